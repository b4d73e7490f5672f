fn main() -> std::process::ExitCode {
    tcplab::cli::main()
}
