//! udp-server: the sandbox's UDP server (see [`tcplab::apps::udp_server`]).

use std::process::ExitCode;

use clap::Parser;
use tcplab::apps::{finish, udp_server};

fn main() -> ExitCode {
    finish(udp_server::main(udp_server::UdpServerArgs::parse()))
}
