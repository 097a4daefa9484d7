//! A service's /metrics, read the way Prometheus reads it: one HTTP/1.1 GET on the admin
//! port. Tests and the benchmark read counters and histograms from it.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, ToSocketAddrs};

/// The whole HTTP reply (status line, headers, Prometheus text) of `GET /metrics` at `admin`.
pub async fn scrape(admin: impl ToSocketAddrs) -> std::io::Result<String> {
    let mut stream = TcpStream::connect(admin).await?;
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nhost: guestloop\r\nconnection: close\r\n\r\n")
        .await?;
    let mut reply = String::new();
    stream.read_to_string(&mut reply).await?;
    Ok(reply)
}

/// The sum of every sample of `series` (a counter, or a histogram's `_sum` / `_count`)
/// over all its label sets, in Prometheus text.
pub fn sum_of(text: &str, series: &str) -> f64 {
    text.lines()
        .filter_map(|line| {
            let rest = line.strip_prefix(series)?;
            let value = if rest.starts_with('{') {
                rest.split_once("} ")?.1
            } else {
                rest.strip_prefix(' ')?
            };
            value.trim().parse::<f64>().ok()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    #[test]
    fn sums_one_series_over_its_label_sets_and_not_its_namesakes() {
        let text = "# HELP x_items_sum whatever\n\
                    x_items_sum{batcher=\"a\"} 6\n\
                    x_items_sum{batcher=\"b\"} 4.5\n\
                    x_items_sum_more 100\n\
                    x_items_count{batcher=\"a\"} 2\n\
                    plain_total 7\n";
        assert_eq!(super::sum_of(text, "x_items_sum"), 10.5);
        assert_eq!(super::sum_of(text, "x_items_count"), 2.0);
        assert_eq!(super::sum_of(text, "plain_total"), 7.0);
        assert_eq!(super::sum_of(text, "absent"), 0.0);
    }
}
