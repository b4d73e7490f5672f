//! tcp-hesitant-consumer: accepts one connection and does not read (see [`tcplab::apps::consumer`]).

use std::process::ExitCode;

use clap::Parser;
use tcplab::apps::{consumer, finish};

fn main() -> ExitCode {
    finish(consumer::main(consumer::ConsumerArgs::parse()))
}
