//! The `kefu` binary: thin glue over the store and the server. It is the only crate that
//! reads the environment, configuration files and the terminal.

mod backup;
mod bench;
mod bot;
mod config;
mod demo;
mod export;
mod import;
mod kb;

use clap::{Parser, Subcommand};
use config::{Config, Settings};
use kefu_domain::access::Role;
use kefu_store::{Actor, Store};
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(
    name = "kefu",
    version,
    about = "kefu 客服 — a self-hosted customer service platform"
)]
struct Cli {
    #[command(flatten)]
    settings: Settings,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Runs the server.
    Serve {
        /// Address to listen on [default: 127.0.0.1:8080].
        #[arg(long, env = "KEFU_LISTEN")]
        listen: Option<String>,
        /// Load the demo dataset first if the database has no customers yet.
        #[arg(long)]
        demo: bool,
    },
    /// Applies database migrations and exits.
    Migrate,
    /// Manages users.
    #[command(subcommand)]
    User(UserCommand),
    /// Manages API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Imports records from a file.
    #[command(subcommand)]
    Import(import::ImportCommand),
    /// Exports records as JSON Lines or CSV.
    Export(export::ExportArgs),
    /// Takes a consistent online backup of the SQLite database.
    Backup(backup::BackupArgs),
    /// Loads a realistic bilingual demo dataset.
    Demo(demo::DemoArgs),
    /// Measures the HTTP API under load on loopback.
    Bench(bench::BenchArgs),
    /// The bot's models: evaluate and train.
    #[command(subcommand)]
    Bot(bot::BotCommand),
    /// The knowledge base (知识库): import entries.
    #[command(subcommand)]
    Kb(kb::KbCommand),
}

#[derive(Subcommand, Debug)]
enum UserCommand {
    /// Adds a user.
    Add {
        #[arg(long)]
        email: String,
        #[arg(long, env = "KEFU_USER_PASSWORD", hide_env_values = true)]
        password: String,
        /// admin, supervisor, agent or readonly.
        #[arg(long)]
        role: String,
        #[arg(long)]
        name: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
enum TokenCommand {
    /// Creates an API token and prints it (once).
    Create {
        #[arg(long)]
        email: String,
        /// Scopes such as cases:read (repeatable, or space-separated); the role's by default.
        #[arg(long = "scope")]
        scopes: Vec<String>,
        #[arg(long, default_value = "cli")]
        name: String,
    },
}

/// A command-line failure: printed as `error: …` with exit code 1 (2 for usage).
#[derive(Debug)]
pub struct CliError(pub String);

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<kefu_store::StoreError> for CliError {
    fn from(error: kefu_store::StoreError) -> Self {
        CliError(error.to_string())
    }
}

impl From<std::io::Error> for CliError {
    fn from(error: std::io::Error) -> Self {
        CliError(error.to_string())
    }
}

impl From<String> for CliError {
    fn from(message: String) -> Self {
        CliError(message)
    }
}

pub type CliResult<T> = Result<T, CliError>;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging() {
    let level = std::env::var("KEFU_LOG")
        .ok()
        .and_then(|l| l.parse::<tracing::Level>().ok())
        .unwrap_or(tracing::Level::INFO);
    let _ = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .try_init();
}

async fn open(config: &Config) -> CliResult<Store> {
    Ok(Store::open(&config.store_options()).await?)
}

async fn run(cli: Cli) -> CliResult<()> {
    let config = Config::load(&cli.settings)?;
    match cli.command {
        Command::Serve { listen, demo } => {
            let listen = listen
                .or(config.listen.clone())
                .unwrap_or_else(|| "127.0.0.1:8080".to_string());
            let store = open(&config).await?;
            if demo && store.customer_count().await? == 0 {
                eprintln!("loading the demo dataset …");
                let summary = demo::load(&store, &demo::DemoArgs::default()).await?;
                eprintln!("{summary}");
                // A token for the API docs' Authorize button, so a newcomer can click through.
                if let Ok(admin) = store.user_by_email("admin@kefu.demo").await {
                    let token = store
                        .create_token(
                            &Actor::cli(),
                            &admin.id,
                            kefu_store::users::NewToken {
                                name: "demo".into(),
                                scopes: None,
                                expires_at: None,
                            },
                        )
                        .await?;
                    eprintln!("API token for the docs' Authorize button: {}", token.secret);
                }
            }
            serve(store, &listen, &config).await
        }
        Command::Migrate => {
            let store = Store::connect(&config.store_options()).await?;
            let report = store.migrate().await?;
            if report.applied.is_empty() {
                println!("database is up to date ({} migrations)", report.already);
            } else {
                for name in &report.applied {
                    println!("applied {name}");
                }
            }
            store.close().await;
            Ok(())
        }
        Command::User(UserCommand::Add {
            email,
            password,
            role,
            name,
        }) => {
            let role = role
                .parse::<Role>()
                .map_err(|e| CliError(format!("--role: {e}")))?;
            let store = open(&config).await?;
            let user = store
                .create_user(
                    &Actor::cli(),
                    kefu_store::users::NewUser {
                        email,
                        name,
                        role,
                        password: Some(password),
                        team_id: None,
                        locale: None,
                    },
                )
                .await?;
            println!("added {} ({}) as {}", user.email, user.id, user.role);
            store.close().await;
            Ok(())
        }
        Command::Token(TokenCommand::Create {
            email,
            scopes,
            name,
        }) => {
            let store = open(&config).await?;
            let user = store
                .user_by_email(&email)
                .await
                .map_err(|_| CliError(format!("no user has email {email}")))?;
            let scopes = if scopes.is_empty() {
                None
            } else {
                Some(scopes.join(" "))
            };
            let created = store
                .create_token(
                    &Actor::cli(),
                    &user.id,
                    kefu_store::users::NewToken {
                        name,
                        scopes,
                        expires_at: None,
                    },
                )
                .await?;
            println!("{}", created.secret);
            store.close().await;
            Ok(())
        }
        Command::Import(command) => {
            let store = open(&config).await?;
            let result = import::run(&store, command).await;
            store.close().await;
            result
        }
        Command::Export(args) => {
            let store = open(&config).await?;
            let result = export::run(&store, args).await;
            store.close().await;
            result
        }
        Command::Backup(args) => {
            let store = open(&config).await?;
            let result = backup::run(&store, args).await;
            store.close().await;
            result
        }
        Command::Demo(args) if args.write_csv.is_some() => {
            let path = args.write_csv.clone().unwrap_or_default();
            demo::write_csv(&path, &args).map(|summary| println!("{summary}"))
        }
        Command::Demo(args) => {
            let store = open(&config).await?;
            let result = demo::load(&store, &args).await;
            store.close().await;
            result.map(|summary| println!("{summary}"))
        }
        Command::Bench(args) => bench::run(&config, args).await,
        Command::Bot(bot::BotCommand::Train(args)) => {
            let store = open(&config).await?;
            let result = bot::train(&store, args).await;
            store.close().await;
            result
        }
        Command::Bot(command) => tokio::task::block_in_place(|| bot::run(command)),
        Command::Kb(command) => {
            let store = open(&config).await?;
            let result = kb::run(&store, command).await;
            store.close().await;
            result
        }
    }
}

async fn serve(store: Store, listen: &str, config: &Config) -> CliResult<()> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| CliError(format!("cannot listen on {listen}: {e}")))?;
    let address = listener.local_addr()?;
    let first_start = !store.has_users().await?;
    eprintln!("kefu is serving on http://{address}  (API docs: http://{address}/api/docs)");
    eprintln!("database: {}", config.describe_database());
    if let Some(draft) = &config.draft {
        eprintln!(
            "reply drafting: model {} at {}",
            draft.model,
            draft.endpoint()
        );
    }
    if first_start {
        eprintln!(
            "no users yet: create one with `kefu user add --email you@example.com --password … --role admin`"
        );
    }
    let state = kefu_server::AppState::new(
        store.clone(),
        kefu_server::ServerConfig {
            secure_cookies: config.secure_cookies,
            draft: config.draft.clone(),
        },
    );
    // Build the bot (index, intent model with its encoder) now rather than on the
    // first customer's message; a failure here is retried on that message.
    let warm = state.clone();
    tokio::spawn(async move {
        if let Err(e) = warm.bot().await {
            tracing::warn!("the bot could not be built yet: {e:?}");
        }
    });
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
        eprintln!("shutting down …");
    };
    let sweeps = tokio::spawn(kefu_server::background::run_sweeps(
        store.clone(),
        kefu_server::background::SWEEP_INTERVAL,
    ));
    let served = kefu_server::serve(listener, state, shutdown).await;
    sweeps.abort();
    served?;
    store.close().await;
    Ok(())
}

/// A progress bar on stderr when stderr is a terminal, hidden otherwise (logs and CI
/// stay clean).
pub fn progress_bar(total: u64, label: &str) -> indicatif::ProgressBar {
    use std::io::IsTerminal as _;
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(total);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{msg:>10} [{bar:40}] {pos}/{len} ({per_sec}, {eta})",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(label.to_string());
    bar
}
