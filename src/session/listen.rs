//! Whether a TCP port has a listener, from the socket table of the calling thread's network
//! namespace (`/proc/thread-self/net/tcp` and `tcp6`).

use std::io::ErrorKind;

/// The state column's value for LISTEN (`TCP_LISTEN` in the kernel).
const TCP_LISTEN: &str = "0A";

/// Whether anything listens on `port` in the namespace of the calling thread.
pub(super) fn listening(port: u16) -> Result<bool, crate::lab::LabError> {
    for table in ["tcp", "tcp6"] {
        let path = format!("/proc/thread-self/net/{table}");
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            // A kernel without IPv6 has no tcp6 table.
            Err(e) if e.kind() == ErrorKind::NotFound => continue,
            Err(source) => {
                return Err(crate::lab::LabError::Io {
                    what: format!("read {path}"),
                    source,
                });
            }
        };
        if table_has_listener(&text, port) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Rows read `sl local_address rem_address st ...`, with `local_address` as `ADDR:PORT` in
/// hex (see proc_net_tcp in the kernel's documentation).
fn table_has_listener(table: &str, port: u16) -> bool {
    table.lines().skip(1).any(|row| {
        let mut fields = row.split_whitespace().skip(1);
        let (Some(local), Some(_remote), Some(state)) =
            (fields.next(), fields.next(), fields.next())
        else {
            return false;
        };
        state == TCP_LISTEN
            && local
                .rsplit_once(':')
                .and_then(|(_, p)| u16::from_str_radix(p, 16).ok())
                == Some(port)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0000000000000000 100 0 0 10 0
   1: 3A00000A:04D2 D000000A:A1B2 01 00000000:00000000 00:00000000 00000000     0        0 2 1 0000000000000000 20 4 30 10 -1
";

    #[test]
    fn finds_listeners_only() {
        assert!(table_has_listener(TABLE, 8080));
        // Port 1234 is an established connection, not a listener.
        assert!(!table_has_listener(TABLE, 1234));
        assert!(!table_has_listener("", 8080));
        assert!(!table_has_listener("header\n garbage", 8080));
    }
}
