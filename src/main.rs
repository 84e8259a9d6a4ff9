fn main() -> std::process::ExitCode {
    kvform::cli::main()
}
