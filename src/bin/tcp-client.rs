//! tcp-client: the sandbox's TCP client (see [`tcplab::apps::client`]).

use std::process::ExitCode;

use clap::Parser;
use tcplab::apps::{client, finish};

fn main() -> ExitCode {
    finish(client::main(client::ClientArgs::parse()))
}
