//! The command line: clap definitions (one file per command), global flags and the
//! [`Printer`]. The only module that knows about terminals, colours and exit codes.
//!
//! Adding a command: write `src/cli/<command>.rs` with an `Args` struct (clap derive,
//! operator-facing help with an example) and `pub fn run(ctx: &Context, args: Args) ->
//! anyhow::Result<ExitCode>`, then add one variant to [`Command`] and one arm to
//! [`dispatch`].
//!
//! A command builds one [`session::Session`] (bucket, `kvform.hcl`, the command's `now`)
//! and passes its values down. Command files never import each other; what several share
//! lives in neutral modules: [`session`] (the session, lock timeouts, the writer name),
//! `output` (tables, shown values, plan output flags), `keys` (single-key reads),
//! `pipeline` (workspace -> desired -> plan), [`plan_files`] (saved plans and the workspace
//! digest on disk), `progress` and [`Printer`]. (`cat_fleet` is the second file of `cat`.)

mod apply;
pub mod argv;
mod cat;
mod cat_fleet;
mod certs;
mod completions;
mod fmt;
mod gc;
mod graph;
mod health;
mod init;
mod keys;
mod kv;
mod output;
mod pipeline;
mod plan;
pub mod plan_files;
mod plan_render;
mod printer;
mod progress;
mod render;
mod run;
mod secrets;
mod serve;
pub mod session;
mod show;
mod state;
mod token;
mod validate;

pub use printer::Printer;

use clap::{CommandFactory, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(
    name = "kvform",
    version,
    about = "Declarative reconciler for a fleet catalog kept in a versioned key-value store",
    long_about = "kvform turns a workspace of workers, jobs and variables into a desired state, \
diffs it against the state in SQLite, shows a reviewable plan and applies it wave by wave.",
    after_help = "Examples:\n  kvform init ./bucket\n  kvform -C ./bucket validate\n  kvform -C ./bucket plan\n\n\
Long flags also take Terraform's single-dash spelling: -chdir=DIR, -out=FILE, -json, -auto-approve."
)]
pub struct Cli {
    /// Run as if kvform was started in DIR (the bucket root).
    #[arg(short = 'C', long = "chdir", value_name = "DIR", global = true)]
    pub chdir: Option<PathBuf>,
    /// Never colour output (the NO_COLOR environment variable does the same).
    #[arg(long, global = true)]
    pub no_color: bool,
    /// Print more detail (progress lines, hook output).
    #[arg(short, long, global = true, conflicts_with = "quiet")]
    pub verbose: bool,
    /// Print only results and errors.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Print a shell completion script.
    Completions(completions::Args),
    /// Create a bucket (never overwrites existing files).
    Init(init::Args),
    /// Check the workspace and report every problem; never touches the state.
    Validate(validate::Args),
    /// Rewrite the bucket's HCL and JSON files in canonical form (--check: exit 3 if not).
    Fmt(fmt::Args),
    /// Print what the state holds (`cat kv`, `cat kv get NS KEY`, `cat workers|jobs|allocations`).
    Cat(cat::Args),
    /// Show what `apply` would change (text, markdown or JSON; --out saves it).
    Plan(plan::Args),
    /// Apply the workspace (or a saved plan) to the state, wave by wave, with hooks.
    Apply(apply::Args),
    /// Draw the jobs, waves and demands (--rollout: the pending plan's batches) as DOT or Mermaid.
    Graph(graph::Args),
    /// Print the current state in the plan's notation, or a saved plan (FILE).
    Show(show::Args),
    /// Read and write single keys (get, set, delete, restore, keys, history).
    Kv(kv::Args),
    /// Remove old history, old tombstones and removed allocations from the state.
    Gc(gc::Args),
    /// Inspect and maintain the state (info, list, check, backup, restore, migrate, force-unlock).
    State(state::Args),
    /// Manage the secret key (rotate-key).
    Secrets(secrets::Args),
    /// The bucket CA and the allocations' certificates (list, rotate-ca).
    Certs(certs::Args),
    /// Run a job's `cli` command on its active allocations; commits its writes on success.
    Run(run::Args),
    /// Render the jobs' `.tpl` templates per active allocation against the current state.
    Render(render::Args),
    /// Run the health_check hooks (read-only) and print one row per hook; exit 1 on failure.
    Health(health::Args),
    /// Serve the state over HTTP: REST API and metrics, until SIGINT/SIGTERM.
    Serve(serve::Args),
    /// Manage API tokens for `kvform serve` (create, list, revoke).
    Token(token::Args),
}

/// What every command gets: where the bucket is and how to print.
pub struct Context {
    /// `-C DIR` or the current directory.
    pub dir: PathBuf,
    pub printer: Printer,
}

/// Parse arguments, run the command, map errors to exit status 1.
pub fn main() -> ExitCode {
    // Usage errors exit 1, not clap's default 2: with `plan --detailed-exitcode`, 2 means
    // "the plan has changes", and a typo in a CI script must not read as that.
    let args = match argv::rewrite(std::env::args_os(), &Cli::command()) {
        Ok(args) => args,
        Err(message) => {
            printer::stderr_line(&format!("error: {message}"));
            return ExitCode::from(1);
        }
    };
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) if e.use_stderr() => {
            let _ = e.print();
            return ExitCode::from(1);
        }
        Err(e) => e.exit(),
    };
    let color = !cli.no_color && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let printer = Printer::new(color, cli.verbose, cli.quiet);
    let dir = cli.chdir.clone().unwrap_or_else(|| PathBuf::from("."));
    let ctx = Context { dir, printer };
    match dispatch(&ctx, cli.command) {
        Ok(code) => code,
        Err(e) => {
            ctx.printer.error(&error_text(&e));
            ExitCode::from(1)
        }
    }
}

fn dispatch(ctx: &Context, command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Completions(a) => completions::run(ctx, a),
        Command::Init(a) => init::run(ctx, a),
        Command::Validate(a) => validate::run(ctx, a),
        Command::Fmt(a) => fmt::run(ctx, a),
        Command::Cat(a) => cat::run(ctx, a),
        Command::Plan(a) => plan::run(ctx, a),
        Command::Apply(a) => apply::run(ctx, a),
        Command::Graph(a) => graph::run(ctx, a),
        Command::Show(a) => show::run(ctx, a),
        Command::Kv(a) => kv::run(ctx, a),
        Command::Gc(a) => gc::run(ctx, a),
        Command::State(a) => state::run(ctx, a),
        Command::Secrets(a) => secrets::run(ctx, a),
        Command::Certs(a) => certs::run(ctx, a),
        Command::Run(a) => run::run(ctx, a),
        Command::Render(a) => render::run(ctx, a),
        Command::Health(a) => health::run(ctx, a),
        Command::Serve(a) => serve::run(ctx, a),
        Command::Token(a) => token::run(ctx, a),
    }
}

/// The error and its causes, each cause once: several layers' messages already include the
/// underlying io/SQLite error, and repeating it (`…: No such file or directory: No such
/// file or directory`) only adds noise.
fn error_text(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let c = cause.to_string();
        if text.is_empty() {
            text = c;
        } else if !text.contains(&c) {
            text.push_str(": ");
            text.push_str(&c);
        }
    }
    text
}
