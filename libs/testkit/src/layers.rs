//! The settings layer an in-process test service runs with, over its defaults: ports the
//! OS picks, a quick shutdown, the test database migrated on start with a small pool, and
//! tokens checked with the test key.

use crate::keys;

/// `[grpc]`, `[admin]`, `[database]` (`url`) and `[auth]` with the test key's public half.
/// Each table appears once: add other tables after it, or other keys of these tables in a
/// later layer.
pub fn service_layer(url: &str) -> String {
    layer(url, "")
}

/// [`service_layer`] for a service that mints its own service token to call its peers:
/// `[auth]` also names the test signing key.
pub fn calling_service_layer(url: &str) -> String {
    layer(
        url,
        &format!(
            "signing_key_path = \"{}\"\n",
            keys().signing_key_path.display()
        ),
    )
}

fn layer(url: &str, more_auth: &str) -> String {
    format!(
        r#"
[grpc]
listen_addr = "127.0.0.1:0"
shutdown_grace = "1s"
[admin]
listen_addr = "127.0.0.1:0"
[database]
url = "{url}"
migrate_on_start = true
max_connections = 5
[auth]
public_key_path = "{}"
{more_auth}"#,
        keys().public_key_path.display(),
    )
}
