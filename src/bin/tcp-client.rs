use std::process::ExitCode;

use clap::Parser;
use tcplab::apps::{client, finish};

fn main() -> ExitCode {
    finish(client::main(client::ClientArgs::parse()))
}
