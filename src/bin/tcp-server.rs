//! tcp-server: the sandbox's TCP server (see [`tcplab::apps::server`]).

use std::process::ExitCode;

use clap::Parser;
use tcplab::apps::{finish, server};

fn main() -> ExitCode {
    finish(server::main(server::ServerArgs::parse()))
}
