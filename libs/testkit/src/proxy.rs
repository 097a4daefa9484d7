//! A TCP proxy standing for a Kubernetes Service in front of a service's pods: each new
//! connection goes to the next backend in turn, an open one stays where it is (as with
//! kube-proxy), and the backends can be swapped while it runs, as endpoints change in a
//! rollout. Used where a test needs old and new processes of one service behind one
//! address.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::net::{TcpListener, TcpStream};

#[derive(Debug)]
pub struct ServiceProxy {
    addr: SocketAddr,
    backends: Arc<Mutex<Vec<SocketAddr>>>,
    /// Connections handed to each backend (by port) so far.
    handed: Arc<Mutex<BTreeMap<u16, usize>>>,
    open: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
    task: tokio::task::JoinHandle<()>,
}

impl ServiceProxy {
    /// Listens on a free loopback port, with no backends yet (connections are closed).
    pub async fn start() -> std::io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", crate::free_port())).await?;
        let addr = listener.local_addr()?;
        let backends: Arc<Mutex<Vec<SocketAddr>>> = Arc::default();
        let handed: Arc<Mutex<BTreeMap<u16, usize>>> = Arc::default();
        let open: Arc<Mutex<Vec<tokio::task::AbortHandle>>> = Arc::default();
        let task = tokio::spawn(accept(
            listener,
            backends.clone(),
            handed.clone(),
            open.clone(),
        ));
        Ok(Self {
            addr,
            backends,
            handed,
            open,
            task,
        })
    }

    /// `http://127.0.0.1:<port>`: the address clients and peers are given.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The endpoints from now on (by gRPC port on loopback).
    pub fn set_backends(&self, ports: &[u16]) {
        *self.backends.lock().expect("proxy lock") = ports
            .iter()
            .map(|p| SocketAddr::from(([127, 0, 0, 1], *p)))
            .collect();
    }

    /// Closes every open connection, so callers reconnect and are spread over the current
    /// backends (as when the pods they were talking to are replaced).
    pub fn reset_connections(&self) {
        for c in self.open.lock().expect("proxy lock").drain(..) {
            c.abort();
        }
    }

    /// How many connections went to the backend on `port`.
    pub fn connections_to(&self, port: u16) -> usize {
        self.handed
            .lock()
            .expect("proxy lock")
            .get(&port)
            .copied()
            .unwrap_or(0)
    }
}

impl Drop for ServiceProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn accept(
    listener: TcpListener,
    backends: Arc<Mutex<Vec<SocketAddr>>>,
    handed: Arc<Mutex<BTreeMap<u16, usize>>>,
    open: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
) {
    let mut next = 0usize;
    loop {
        let Ok((mut inbound, _)) = listener.accept().await else {
            continue;
        };
        let backend = {
            let backends = backends.lock().expect("proxy lock");
            next = next.wrapping_add(1);
            (!backends.is_empty()).then(|| backends[next % backends.len()])
        };
        let Some(backend) = backend else {
            continue; // dropping `inbound` closes it: no endpoints
        };
        *handed
            .lock()
            .expect("proxy lock")
            .entry(backend.port())
            .or_default() += 1;
        let connection = tokio::spawn(async move {
            let _ = inbound.set_nodelay(true);
            if let Ok(mut outbound) = TcpStream::connect(backend).await {
                let _ = outbound.set_nodelay(true);
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            }
        });
        let mut open = open.lock().expect("proxy lock");
        open.retain(|c| !c.is_finished());
        open.push(connection.abort_handle());
    }
}
