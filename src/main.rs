//! The `esurety` binary: parses the command line, sets up logging, runs the command.

use clap::Parser;
use esurety::cli::{Cli, run};
use tracing_subscriber::EnvFilter;

fn main() {
    let cli = Cli::parse();
    let mut filter = EnvFilter::try_from_env("ESURETY_LOG").unwrap_or_else(|_| EnvFilter::new("warn"));
    // The mail and database libraries write what goes over the wire at debug and trace:
    // logins (an IMAP LOGIN's password, an XOAUTH2 token) and statements' values. Never
    // below info, whatever ESURETY_LOG says.
    for quiet in ["async_imap=info", "imap_proto=info", "lettre=info", "tokio_postgres=info", "postgres=info", "hyper=info", "h2=info"] {
        filter = filter.add_directive(quiet.parse().expect("a valid directive"));
    }
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if cli.log_json {
        builder.json().init();
    } else {
        builder.init();
    }
    match run(cli) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("esurety: {e:#}");
            std::process::exit(2);
        }
    }
}
