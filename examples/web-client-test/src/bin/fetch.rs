//! `fetch ADDRESS:PORT TIMEOUT_SECONDS`: prints the status line of `GET /`.

use std::process::ExitCode;
use std::time::Duration;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(server), Some(Ok(timeout))) = (
        args.first().and_then(|a| a.parse().ok()),
        args.get(1).map(|t| t.parse::<f64>()),
    ) else {
        eprintln!("usage: fetch ADDRESS:PORT TIMEOUT_SECONDS");
        return ExitCode::from(2);
    };
    if !(timeout > 0.0 && timeout < 3600.0) {
        eprintln!("fetch: the timeout must be between 0 and 3600 seconds");
        return ExitCode::from(2);
    }
    match web_client_test::get(server, Duration::from_secs_f64(timeout)) {
        Ok(status) => {
            println!("{status}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("fetch: {e:?}");
            ExitCode::from(e.exit_code() as u8)
        }
    }
}
