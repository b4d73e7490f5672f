//! tcp-eager-producer: sends large messages as fast as allowed (see [`tcplab::apps::producer`]).

use std::process::ExitCode;

use clap::Parser;
use tcplab::apps::{finish, producer};

fn main() -> ExitCode {
    finish(producer::main(producer::ProducerArgs::parse()))
}
