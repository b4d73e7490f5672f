use std::process::ExitCode;

use clap::Parser;
use tcplab::apps::{consumer, finish};

fn main() -> ExitCode {
    finish(consumer::main(consumer::ConsumerArgs::parse()))
}
