use std::process::ExitCode;

use clap::Parser;
use tcplab::apps::{finish, server};

fn main() -> ExitCode {
    finish(server::main(server::ServerArgs::parse()))
}
