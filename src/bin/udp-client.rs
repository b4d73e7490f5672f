//! udp-client: the sandbox's UDP client (see [`tcplab::apps::udp_client`]).

use std::process::ExitCode;

use clap::Parser;
use tcplab::apps::{finish, udp_client};

fn main() -> ExitCode {
    finish(udp_client::main(udp_client::UdpClientArgs::parse()))
}
