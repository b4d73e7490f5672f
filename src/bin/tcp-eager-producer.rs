//! tcp-eager-producer: sends JSON messages of a few KB every few seconds (see [`tcplab::apps::producer`]).

use std::process::ExitCode;

use clap::Parser;
use tcplab::apps::{finish, producer};

fn main() -> ExitCode {
    finish(producer::main(producer::ProducerArgs::parse()))
}
