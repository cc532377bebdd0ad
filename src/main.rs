fn main() {
    let code = provisor::cli::main();
    provisor::cli::exit_now(code)
}
