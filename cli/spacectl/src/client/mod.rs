//! The owner's commands (`login`, `spaces`, `keys`, `secrets`, `events tail`): a thin
//! layer over the account API, reached over HTTP like any other client.
//!
//! [`run`] takes its arguments and standard streams as parameters, so the commands are
//! tested against a running server in-process.

pub mod api;
pub mod config;
mod sse;
mod table;

use std::ffi::OsString;
use std::future::Future;
use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::pin::Pin;

use clap::{Parser, Subcommand};

use api::{AccountApi, ClientError, NewKey};
use config::Login;

/// Where a client connects when nothing says otherwise: `spacectl serve`'s address.
pub const DEFAULT_URL: &str = "http://127.0.0.1:8787";

/// How long the key `events tail` mints for itself lives, at most: it is revoked when the
/// tail stops, and expires if the tail is killed before it can.
const TAIL_KEY_HOURS: i64 = 12;

/// Where secrets come from: a terminal is prompted without echo, anything else is read
/// to its end.
pub enum Input<'a> {
    Terminal,
    Piped(&'a mut (dyn BufRead + Send)),
}

/// A command's streams, and what stops a command that runs until told (`events tail`).
pub struct Io<'a> {
    pub input: Input<'a>,
    pub out: &'a mut (dyn Write + Send),
    pub err: &'a mut (dyn Write + Send),
    pub stop: Pin<Box<dyn Future<Output = ()> + Send + 'a>>,
}

/// Options every command takes.
#[derive(Debug, Clone, clap::Args)]
pub struct Connection {
    /// The API's origin [default: the one logged in to, else http://127.0.0.1:8787].
    #[arg(long, env = "SPACE_API_URL")]
    pub url: Option<String>,
    /// Where the login is kept [default: the platform's config folder].
    #[arg(long, env = "SPACECTL_CONFIG_DIR")]
    pub config_dir: Option<PathBuf>,
}

/// The Space a command acts on.
#[derive(Debug, Clone, clap::Args)]
pub struct SpaceChoice {
    /// The Space's id [default: the one chosen at login, or the account's only one].
    #[arg(long)]
    pub space: Option<String>,
}

/// The owner's commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Keep the account key (read from standard input, or a prompt that does not echo).
    Login {
        #[command(flatten)]
        connection: Connection,
        /// The Space later commands act on by default.
        #[arg(long)]
        space: Option<String>,
    },
    /// The account's Spaces.
    #[command(subcommand)]
    Spaces(SpacesCommand),
    /// A Space's API keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// A Space's secrets (values are write-only).
    #[command(subcommand)]
    Secrets(SecretsCommand),
    /// A Space's events.
    #[command(subcommand)]
    Events(EventsCommand),
    /// Live actions of keys minted with --approval-required, waiting for your decision.
    #[command(subcommand)]
    Approvals(ApprovalsCommand),
}

#[derive(Debug, Subcommand)]
pub enum ApprovalsCommand {
    /// List the approvals (the pending ones with --status pending).
    List {
        #[command(flatten)]
        connection: Connection,
        #[command(flatten)]
        space: SpaceChoice,
        /// pending, approved, rejected, performed or failed.
        #[arg(long)]
        status: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Approve: the worker runs the call once, as its key.
    Approve {
        #[command(flatten)]
        connection: Connection,
        #[command(flatten)]
        space: SpaceChoice,
        id: String,
    },
    /// Reject: the call is never run.
    Reject {
        #[command(flatten)]
        connection: Connection,
        #[command(flatten)]
        space: SpaceChoice,
        id: String,
        /// Why, kept with the approval.
        #[arg(long)]
        reason: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum SpacesCommand {
    /// List the Spaces.
    List {
        #[command(flatten)]
        connection: Connection,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Create a Space and print its id.
    Create {
        #[command(flatten)]
        connection: Connection,
        name: String,
    },
    /// Delete a Space: its keys stop working at once and its data is removed.
    Delete {
        #[command(flatten)]
        connection: Connection,
        space: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Mint a key and print its token, once.
    Create {
        #[command(flatten)]
        connection: Connection,
        #[command(flatten)]
        space: SpaceChoice,
        #[arg(long)]
        name: String,
        /// Comma-separated, like contacts:read,tasks:write.
        #[arg(long, value_delimiter = ',', required = true)]
        scopes: Vec<String>,
        /// How long the key lives, like 30d, 12h, 2w or 90m [default: until revoked].
        #[arg(long, alias = "expires")]
        expires_in: Option<String>,
        /// Requests per minute [default: 100].
        #[arg(long)]
        rate_limit: Option<u32>,
        /// Pin the key to these domains (comma-separated).
        #[arg(long, value_delimiter = ',')]
        toolsets: Option<Vec<String>>,
        /// Refuse everything but reads.
        #[arg(long)]
        read_only: bool,
        /// Scopes whose live actions wait for your approval (comma-separated, like phone:run).
        #[arg(long, value_delimiter = ',')]
        approval_required: Option<Vec<String>>,
        /// Also print the `claude mcp add` line that connects Claude Code with this key.
        #[arg(long)]
        mcp: bool,
    },
    /// List the keys, with their use today and this month.
    List {
        #[command(flatten)]
        connection: Connection,
        #[command(flatten)]
        space: SpaceChoice,
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key: its next request is refused.
    Revoke {
        #[command(flatten)]
        connection: Connection,
        #[command(flatten)]
        space: SpaceChoice,
        id: String,
    },
    /// A key's requests per day over the last 90 days.
    Usage {
        #[command(flatten)]
        connection: Connection,
        #[command(flatten)]
        space: SpaceChoice,
        id: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum SecretsCommand {
    /// Set a secret's value, read from standard input or a prompt (never from arguments).
    Set {
        #[command(flatten)]
        connection: Connection,
        #[command(flatten)]
        space: SpaceChoice,
        name: String,
    },
    /// List the secrets' names.
    List {
        #[command(flatten)]
        connection: Connection,
        #[command(flatten)]
        space: SpaceChoice,
        #[arg(long)]
        json: bool,
    },
    /// Delete a secret and its value.
    Delete {
        #[command(flatten)]
        connection: Connection,
        #[command(flatten)]
        space: SpaceChoice,
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum EventsCommand {
    /// Print the Space's events as they happen, one line each, until interrupted.
    Tail {
        #[command(flatten)]
        connection: Connection,
        #[command(flatten)]
        space: SpaceChoice,
        /// Only these types (comma-separated; `contact.*` matches a family).
        #[arg(long = "type")]
        types: Option<String>,
        /// Stop after this many events.
        #[arg(long)]
        count: Option<u64>,
        /// Print each event's JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Parser)]
#[command(name = "spacectl")]
struct Owner {
    #[command(subcommand)]
    command: Command,
}

/// Parses `args` (the program name first) and runs the command; returns the exit code.
pub async fn run<I, T>(args: I, io: Io<'_>) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    match Owner::try_parse_from(args) {
        Ok(owner) => execute(owner.command, io).await,
        Err(error) => {
            let _ = write!(io.err, "{}", error.render());
            error.exit_code()
        }
    }
}

/// Runs a parsed command; errors are printed, the API's message first, and exit 1.
pub async fn execute(command: Command, io: Io<'_>) -> i32 {
    let Io { input, out, err, stop } = io;
    let mut streams = Streams { input, out, err };
    match dispatch(command, &mut streams, stop).await {
        Ok(()) => 0,
        Err(error) => {
            let _ = writeln!(streams.err, "error: {error}");
            if let ClientError::Api { fields, .. } = &error {
                for field in fields {
                    let _ = writeln!(streams.err, "  {field}");
                }
            }
            1
        }
    }
}

struct Streams<'a> {
    input: Input<'a>,
    out: &'a mut (dyn Write + Send),
    err: &'a mut (dyn Write + Send),
}

impl Streams<'_> {
    fn out(&mut self, text: std::fmt::Arguments<'_>) -> Result<(), ClientError> {
        writeln!(self.out, "{text}").map_err(ClientError::io("cannot write the output"))
    }

    fn note(&mut self, text: std::fmt::Arguments<'_>) -> Result<(), ClientError> {
        writeln!(self.err, "{text}").map_err(ClientError::io("cannot write the output"))
    }

    fn json(&mut self, value: &impl serde::Serialize) -> Result<(), ClientError> {
        let text = serde_json::to_string_pretty(value).map_err(|e| ClientError::Unexpected(e.to_string()))?;
        self.out(format_args!("{text}"))
    }

    /// What a list command prints: the items as JSON with `--json`, else a table of
    /// `headers` with a row per item.
    fn listing<T: serde::Serialize>(
        &mut self,
        json: bool,
        items: &[T],
        headers: &[&str],
        row: impl Fn(&T) -> Vec<String>,
    ) -> Result<(), ClientError> {
        if json {
            return self.json(&items);
        }
        self.out(format_args!("{}", table::render(headers, items.iter().map(row))))
    }

    /// A secret from the terminal without echo, or the whole of piped input less its
    /// final line break.
    fn secret(&mut self, prompt: &str) -> Result<String, ClientError> {
        let text = match &mut self.input {
            Input::Terminal => {
                rpassword::prompt_password(prompt).map_err(ClientError::io("cannot read the terminal"))?
            }
            Input::Piped(reader) => {
                let mut text = String::new();
                reader
                    .read_to_string(&mut text)
                    .map_err(ClientError::io("cannot read standard input"))?;
                let trimmed = text.strip_suffix('\n').unwrap_or(&text);
                trimmed.strip_suffix('\r').unwrap_or(trimmed).to_owned()
            }
        };
        if text.is_empty() {
            return Err(ClientError::Usage("nothing was read from standard input".into()));
        }
        Ok(text)
    }
}

/// The stored login and a client for it.
struct LoggedIn {
    api: AccountApi,
    login: Login,
    folder: PathBuf,
}

impl LoggedIn {
    fn open(connection: &Connection) -> Result<LoggedIn, ClientError> {
        let folder = config::folder(connection.config_dir.as_deref())?;
        let login = config::load(&folder)?.ok_or(ClientError::NotLoggedIn)?;
        let url = connection.url.clone().unwrap_or_else(|| login.url.clone());
        Ok(LoggedIn {
            api: AccountApi::new(&url, &login.account_key),
            login,
            folder,
        })
    }

    /// The login and the Space a command acts on.
    async fn in_space(connection: &Connection, choice: &SpaceChoice) -> Result<(LoggedIn, String), ClientError> {
        let logged_in = LoggedIn::open(connection)?;
        let space = logged_in.space(choice).await?;
        Ok((logged_in, space))
    }

    /// `--space`, else the Space chosen at login, else the account's only Space.
    async fn space(&self, choice: &SpaceChoice) -> Result<String, ClientError> {
        if let Some(space) = choice.space.clone().or_else(|| self.login.space.clone()) {
            return Ok(space);
        }
        let spaces = self.api.spaces().await?;
        match spaces.as_slice() {
            [only] => Ok(only.id.clone()),
            [] => Err(ClientError::Usage(
                "the account has no Space: create one with `spacectl spaces create NAME`".into(),
            )),
            several => Err(ClientError::Usage(format!(
                "choose a Space with --space (the account has {})",
                several.iter().map(|s| s.id.as_str()).collect::<Vec<_>>().join(", ")
            ))),
        }
    }
}

async fn dispatch(
    command: Command,
    io: &mut Streams<'_>,
    stop: Pin<Box<dyn Future<Output = ()> + Send + '_>>,
) -> Result<(), ClientError> {
    match command {
        Command::Login { connection, space } => login(&connection, space, io).await,
        Command::Spaces(command) => spaces(command, io).await,
        Command::Keys(command) => keys(command, io).await,
        Command::Secrets(command) => secrets(command, io).await,
        Command::Approvals(command) => approvals(command, io).await,
        Command::Events(EventsCommand::Tail {
            connection,
            space,
            types,
            count,
            json,
        }) => {
            let (logged_in, space) = LoggedIn::in_space(&connection, &space).await?;
            let tail = Tail {
                types: types.as_deref(),
                count,
                json,
            };
            tail.run(&logged_in.api, &space, io, stop).await
        }
    }
}

async fn login(connection: &Connection, space: Option<String>, io: &mut Streams<'_>) -> Result<(), ClientError> {
    let folder = config::folder(connection.config_dir.as_deref())?;
    let url = connection.url.clone().unwrap_or_else(|| DEFAULT_URL.to_owned());
    let key = io.secret("Account key (wka_live_…): ")?.trim().to_owned();
    if !key.starts_with("wka_live_") {
        return Err(ClientError::Usage(
            "that is not an account key: account keys start with wka_live_".into(),
        ));
    }
    if sent_in_clear(&url) {
        io.note(format_args!(
            "warning: {url} is plain http: the account key crosses the network unencrypted; use https beyond this machine."
        ))?;
    }
    let api = AccountApi::new(&url, &key);
    let spaces = api.spaces().await?;
    let space = match space {
        Some(space) if spaces.iter().any(|s| s.id == space) => Some(space),
        Some(space) => return Err(ClientError::Usage(format!("the account has no Space `{space}`"))),
        None if spaces.len() == 1 => spaces.first().map(|s| s.id.clone()),
        None => None,
    };
    let login = Login {
        url: api.origin().to_owned(),
        account_key: key,
        space: space.clone(),
    };
    let path = config::save(&folder, &login)?;
    io.out(format_args!(
        "Logged in to {}; the key is kept in {}.",
        login.url,
        path.display()
    ))?;
    match space {
        Some(space) => io.out(format_args!(
            "Commands act on the Space {space} unless --space says otherwise."
        )),
        None => io.out(format_args!(
            "The account has {} Spaces: pass --space, or log in again with --space.",
            spaces.len()
        )),
    }
}

async fn spaces(command: SpacesCommand, io: &mut Streams<'_>) -> Result<(), ClientError> {
    match command {
        SpacesCommand::List { connection, json } => {
            let spaces = LoggedIn::open(&connection)?.api.spaces().await?;
            io.listing(json, &spaces, &["ID", "NAME", "STATUS", "CREATED"], |s| {
                vec![s.id.clone(), s.name.clone(), s.status.clone(), s.created_at.clone()]
            })
        }
        SpacesCommand::Create { connection, name } => {
            let space = LoggedIn::open(&connection)?.api.create_space(&name).await?;
            io.out(format_args!("{}", space.id))
        }
        SpacesCommand::Delete { connection, space } => {
            let logged_in = LoggedIn::open(&connection)?;
            logged_in.api.delete_space(&space).await?;
            if logged_in.login.space.as_deref() == Some(space.as_str()) {
                let login = Login {
                    space: None,
                    ..logged_in.login.clone()
                };
                config::save(&logged_in.folder, &login)?;
            }
            io.out(format_args!(
                "Deleted {space}: its keys no longer work and its data is being removed."
            ))
        }
    }
}

async fn approvals(command: ApprovalsCommand, io: &mut Streams<'_>) -> Result<(), ClientError> {
    let (connection, space, id, decision, reason) = match command {
        ApprovalsCommand::List {
            connection,
            space,
            status,
            json,
        } => {
            let (logged_in, space) = LoggedIn::in_space(&connection, &space).await?;
            let approvals = logged_in.api.approvals(&space, status.as_deref()).await?;
            let headers = ["ID", "STATUS", "OPERATION", "PATH", "KEY", "CREATED"];
            return io.listing(json, &approvals, &headers, |a| {
                vec![
                    a.id.clone(),
                    a.status.clone(),
                    a.operation.clone(),
                    format!("{} {}", a.method, a.path),
                    a.key_id.clone(),
                    a.created_at.clone(),
                ]
            });
        }
        ApprovalsCommand::Approve { connection, space, id } => (connection, space, id, "approve", None),
        ApprovalsCommand::Reject {
            connection,
            space,
            id,
            reason,
        } => (connection, space, id, "reject", reason),
    };
    let (logged_in, space) = LoggedIn::in_space(&connection, &space).await?;
    let approval = logged_in.api.decide(&space, &id, decision, reason.as_deref()).await?;
    match approval.status.as_str() {
        "approved" => io.out(format_args!(
            "Approved {id}: the worker runs {} once.",
            approval.operation
        )),
        "rejected" => io.out(format_args!("Rejected {id}: {} is never run.", approval.operation)),
        other => io.out(format_args!("{id} is {other}.")),
    }
}

async fn keys(command: KeysCommand, io: &mut Streams<'_>) -> Result<(), ClientError> {
    match command {
        KeysCommand::Create {
            connection,
            space,
            name,
            scopes,
            expires_in,
            rate_limit,
            toolsets,
            read_only,
            approval_required,
            mcp,
        } => {
            let expires_at = match expires_in {
                Some(text) => Some(expiry(&text, chrono::Utc::now())?),
                None => None,
            };
            let (logged_in, space) = LoggedIn::in_space(&connection, &space).await?;
            let key = NewKey {
                name,
                scopes,
                expires_at,
                rate_limit_per_minute: rate_limit,
                toolsets,
                read_only,
                approval_required,
            };
            let minted = logged_in.api.create_key(&space, &key).await?;
            io.note(format_args!(
                "Minted {} ({}) on {space}. The token is shown this once; store it now:",
                minted.id, minted.name
            ))?;
            io.out(format_args!("{}", minted.token))?;
            if mcp {
                let origin = logged_in.api.origin();
                io.note(format_args!("Connect Claude Code with it:"))?;
                io.out(format_args!(
                    "{}",
                    account_api::mcp_setup::claude_code_command(origin, &minted.token)
                ))?;
                io.note(format_args!("Or put this in .mcp.json:"))?;
                io.out(format_args!(
                    "{}",
                    account_api::mcp_setup::mcp_json(origin, &minted.token)
                ))?;
            }
            Ok(())
        }
        KeysCommand::List {
            connection,
            space,
            json,
        } => {
            let (logged_in, space) = LoggedIn::in_space(&connection, &space).await?;
            let keys = logged_in.api.keys(&space).await?;
            let headers = [
                "ID",
                "NAME",
                "PREFIX",
                "SCOPES",
                "EXPIRES",
                "LAST USED",
                "TODAY",
                "THIS MONTH",
            ];
            io.listing(json, &keys, &headers, |k| {
                vec![
                    k.id.clone(),
                    k.name.clone(),
                    k.prefix.clone(),
                    k.scopes.join(","),
                    k.expires_at.clone().unwrap_or_else(|| "never".into()),
                    k.last_used_at.clone().unwrap_or_else(|| "never".into()),
                    k.requests_today.to_string(),
                    k.requests_this_month.to_string(),
                ]
            })
        }
        KeysCommand::Revoke { connection, space, id } => {
            let (logged_in, space) = LoggedIn::in_space(&connection, &space).await?;
            logged_in.api.revoke_key(&space, &id).await?;
            io.out(format_args!("Revoked {id}: its next request is refused."))
        }
        KeysCommand::Usage {
            connection,
            space,
            id,
            json,
        } => {
            let (logged_in, space) = LoggedIn::in_space(&connection, &space).await?;
            let usage = logged_in.api.key_usage(&space, &id).await?;
            if json {
                return io.json(&usage);
            }
            io.out(format_args!(
                "{}: {} requests today, {} this month.",
                usage.key_id, usage.today, usage.this_month
            ))?;
            if !usage.days.is_empty() {
                let rows = usage.days.iter().map(|d| vec![d.date.clone(), d.requests.to_string()]);
                io.out(format_args!("{}", table::render(&["DATE", "REQUESTS"], rows)))?;
            }
            Ok(())
        }
    }
}

async fn secrets(command: SecretsCommand, io: &mut Streams<'_>) -> Result<(), ClientError> {
    match command {
        SecretsCommand::Set {
            connection,
            space,
            name,
        } => {
            let (logged_in, space) = LoggedIn::in_space(&connection, &space).await?;
            let value = io.secret(&format!("Value of {name}: "))?;
            logged_in.api.set_secret(&space, &name, &value).await?;
            io.out(format_args!("Set {name}."))
        }
        SecretsCommand::List {
            connection,
            space,
            json,
        } => {
            let (logged_in, space) = LoggedIn::in_space(&connection, &space).await?;
            let secrets = logged_in.api.secrets(&space).await?;
            io.listing(json, &secrets, &["NAME", "CREATED", "UPDATED"], |s| {
                vec![
                    s.name.clone(),
                    s.created_at.clone().unwrap_or_default(),
                    s.updated_at.clone().unwrap_or_default(),
                ]
            })
        }
        SecretsCommand::Delete {
            connection,
            space,
            name,
        } => {
            let (logged_in, space) = LoggedIn::in_space(&connection, &space).await?;
            logged_in.api.delete_secret(&space, &name).await?;
            io.out(format_args!("Deleted {name}."))
        }
    }
}

/// Whether `url` is plain http to another machine than this one.
fn sent_in_clear(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("http://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(v6),
        None => authority.split(':').next().unwrap_or(authority),
    };
    let loopback = host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
    !(loopback || host.eq_ignore_ascii_case("localhost"))
}

/// `30d`, `12h`, `2w` or `90m` from `now`, as the API's RFC 3339.
fn expiry(text: &str, now: chrono::DateTime<chrono::Utc>) -> Result<String, ClientError> {
    let bad = || {
        ClientError::Usage(format!(
            "--expires-in takes a duration like 30d, 12h, 2w or 90m, not `{text}`"
        ))
    };
    let unit_at = text.len().checked_sub(1).ok_or_else(bad)?;
    let (number, unit) = text.split_at(unit_at);
    let number: i64 = number.parse().map_err(|_| bad())?;
    let duration = match unit {
        "m" => chrono::Duration::try_minutes(number),
        "h" => chrono::Duration::try_hours(number),
        "d" => chrono::Duration::try_days(number),
        "w" => chrono::Duration::try_weeks(number),
        _ => None,
    }
    .filter(|d| *d > chrono::Duration::zero())
    .ok_or_else(bad)?;
    let at = now.checked_add_signed(duration).ok_or_else(bad)?;
    Ok(at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}

/// `events tail`: the realtime stream takes a space key, so the tail mints one that can
/// only read events, and revokes it when it stops.
struct Tail<'a> {
    types: Option<&'a str>,
    count: Option<u64>,
    json: bool,
}

impl Tail<'_> {
    async fn run(
        &self,
        api: &AccountApi,
        space: &str,
        io: &mut Streams<'_>,
        stop: Pin<Box<dyn Future<Output = ()> + Send + '_>>,
    ) -> Result<(), ClientError> {
        let expires_at = chrono::Utc::now() + chrono::Duration::hours(TAIL_KEY_HOURS);
        let key = NewKey {
            name: "spacectl events tail".into(),
            scopes: vec!["events:read".into()],
            expires_at: Some(expires_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
            rate_limit_per_minute: None,
            toolsets: None,
            read_only: true,
            approval_required: None,
        };
        let minted = api.create_key(space, &key).await?;
        let followed = tokio::select! {
            followed = self.follow(api, space, &minted.token, io) => followed,
            () = stop => Ok(()),
        };
        let revoked = api.revoke_key(space, &minted.id).await;
        followed.and(revoked)
    }

    /// Reads the stream, resuming after the last event whenever it ends (it lasts 14
    /// minutes at most), until `count` events were printed.
    async fn follow(
        &self,
        api: &AccountApi,
        space: &str,
        token: &str,
        io: &mut Streams<'_>,
    ) -> Result<(), ClientError> {
        let mut last_id: Option<String> = None;
        let mut printed = 0;
        let mut announced = false;
        loop {
            let mut response = api.realtime(token, self.types, last_id.as_deref()).await?;
            if !announced {
                io.note(format_args!("Following the events of {space} (Ctrl-C to stop)."))?;
                announced = true;
            }
            let mut parser = sse::Parser::default();
            while let Some(chunk) = response.chunk().await.map_err(|source| ClientError::Unreachable {
                url: api.origin().to_owned(),
                source,
            })? {
                for event in parser.push(&chunk) {
                    if self.json {
                        io.out(format_args!("{}", event.data))?;
                    } else {
                        io.out(format_args!("{}", sse::line(&event)))?;
                    }
                    if event.id.is_some() {
                        last_id = event.id;
                    }
                    printed += 1;
                    if self.count.is_some_and(|count| printed >= count) {
                        return Ok(());
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn only_plain_http_elsewhere_is_warned_about() {
        assert!(sent_in_clear("http://api.example.com"));
        assert!(!sent_in_clear("https://api.example.com"));
        assert!(!sent_in_clear("http://127.0.0.1:8787"));
        assert!(!sent_in_clear("http://localhost:8787"));
        assert!(!sent_in_clear("http://[::1]:8787"));
        assert!(sent_in_clear("http://localhost.example.com"));
        assert!(sent_in_clear("http://127.example.com"));
    }

    #[test]
    fn expiries_are_durations_from_now() {
        let now = chrono::Utc.with_ymd_and_hms(2026, 12, 5, 10, 0, 0).unwrap();
        assert_eq!(expiry("30d", now).unwrap(), "2027-01-04T10:00:00Z");
        assert_eq!(expiry("12h", now).unwrap(), "2026-12-05T22:00:00Z");
        assert_eq!(expiry("2w", now).unwrap(), "2026-12-19T10:00:00Z");
        for bad in ["", "d", "30", "-1d", "0d", "5y", "1.5d"] {
            assert!(expiry(bad, now).is_err(), "{bad}");
        }
    }
}
