//! The `dipledger` binary under test, run as a user would, without the `DIPLEDGER_SERVER` and
//! `DIPLEDGER_TOKEN` of the environment the tests happen to run in.

use std::process::{Command, Output};

/// Runs the binary with `args` and waits for it.
pub fn dipledger<S: AsRef<str>>(args: &[S]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dipledger"))
        .args(args.iter().map(AsRef::as_ref))
        .env_remove("DIPLEDGER_SERVER")
        .env_remove("DIPLEDGER_TOKEN")
        .output()
        .expect("run dipledger")
}

/// [`dipledger`] off the async runtime's threads (a server in the same runtime answers it).
/// The arguments are copied at once, so the future borrows nothing.
pub fn dipledger_async<S: AsRef<str>>(args: &[S]) -> impl std::future::Future<Output = Output> + 'static {
    let args: Vec<String> = args.iter().map(|arg| arg.as_ref().to_owned()).collect();
    async move {
        tokio::task::spawn_blocking(move || dipledger(&args))
            .await
            .expect("the binary's task")
    }
}
