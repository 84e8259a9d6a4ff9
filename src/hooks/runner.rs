//! Running one hook process (SPEC §6): environment, working directory, a token for the
//! API, its own process group, a timeout that kills the whole group, and output captured
//! line by line into `logs/<serial>/<job>/<command>@<host>.log`.
//!
//! Why a process group: a hook is usually a shell script that starts children; killing
//! only the script on timeout would leave its children running (and holding the output
//! pipes open). The hook is started as the leader of a new group and the whole group gets
//! SIGKILL (on timeout; SIGTERM first when kvform is interrupted, below).
//!
//! Secrets: every captured line (stdout and stderr) is redacted with the secrets the hook
//! has read or written through the API ([`super::redact`]) before it reaches the log or
//! the outcome; when the hook exits, its lines get one more pass with the final set.
//! Each invocation's section of the log opens with a [`header`] line, since retried
//! applies append to the same file.
//!
//! Output after the hook exits: background children that keep the pipes open are not
//! waited for longer than [`DRAIN_GRACE`]; the hook's result does not depend on them.
//!
//! Hooks never outlive their command (issue 22 item 4). Every running hook's group is in
//! [`RUNNING`]: on SIGINT/SIGTERM the command calls [`stop_running_hooks`] (SIGTERM to each
//! group, SIGKILL after a grace period) and no hook starts any more
//! ([`crate::state::interrupt`]). On Linux a hook also gets `PR_SET_PDEATHSIG(SIGKILL)`, so
//! a SIGKILLed kvform takes it along. That signal follows the *thread* that spawned the
//! hook, not the process: [`run_hook`] spawns and waits in the same thread, which therefore
//! outlives the hook (the batch's scoped threads join only after their hooks ended). Its
//! children (a script's `sleep`) do not inherit it; a SIGKILLed kvform cannot signal
//! them, but the hook's own process — the one that would act on the state — is gone.

use super::api::ApiHandle;
use super::redact::SeenSecrets;
use super::token::HookIdentity;
use crate::workspace::types::Event;
use std::collections::VecDeque;
use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use uuid::Uuid;
use zeroize::Zeroizing;

/// The Python client module, put on every hook's `PYTHONPATH`.
pub const PYTHON_HELPER: &str = include_str!("python/kvform_hook.py");

/// How long to keep reading output after the hook exited.
pub const DRAIN_GRACE: Duration = Duration::from_millis(500);

/// Lines of output kept in memory for failure reports (the log file has all of them).
pub const OUTPUT_TAIL_LINES: usize = 200;

/// Everything needed to run one hook for one allocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookInvocation {
    /// The bucket root: the working directory, and what a relative `script` is relative to.
    pub bucket_root: PathBuf,
    /// The command's script (`workspace/jobs/<job>/_modules/<command>.py`), relative to the
    /// bucket root or absolute.
    pub script: PathBuf,
    pub job: String,
    pub command: String,
    pub event: Event,
    pub alloc_id: Uuid,
    /// The worker's address (`ALLOCATION_IP`).
    pub host: String,
    /// `<job>_allocation_index` of this allocation (`ALLOCATION_INDEX`).
    pub alloc_index: usize,
    pub disabled: bool,
    pub current_version: String,
    pub new_version: String,
    pub timeout: Duration,
    /// Extra environment of a rollout event (maand's `BATCH_*`, `TARGET`, …), set after
    /// the variables above.
    pub env: Vec<(String, String)>,
    /// The command's `now` (read once by the CLI session), shown in the log header.
    pub started_at: i64,
}

impl HookInvocation {
    pub fn identity(&self) -> HookIdentity {
        HookIdentity {
            alloc_id: self.alloc_id,
            job: self.job.clone(),
            host: self.host.clone(),
            event: self.event,
            command: self.command.clone(),
        }
    }
    /// `<job>/<command>@<host>`
    pub fn label(&self) -> String {
        self.identity().label()
    }
}

/// How a hook ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HookStatus {
    /// Exited with this code (0 = success).
    Exited(i32),
    /// Killed by this signal (not by us).
    Signaled(i32),
    /// Ran past its timeout; its process group was killed.
    TimedOut(Duration),
    /// Could not be started (missing script, not executable, interpreter missing, …).
    FailedToStart(String),
}

/// The result of one hook, for progress lines and failure reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookOutcome {
    pub job: String,
    pub command: String,
    pub host: String,
    pub event: Event,
    pub status: HookStatus,
    /// The last [`OUTPUT_TAIL_LINES`] lines of stdout+stderr, each prefixed
    /// `[<job>/<command>@<host>] `.
    pub output: Vec<String>,
    /// Where the full output was written (`None` if the log could not be opened).
    pub log_file: Option<PathBuf>,
    pub duration: Duration,
}

impl HookOutcome {
    pub fn success(&self) -> bool {
        self.status == HookStatus::Exited(0)
    }

    /// One line saying how it ended, e.g. `api/command_health@10.0.0.1 exited with status 3`.
    pub fn summary(&self) -> String {
        let who = format!("{}/{}@{}", self.job, self.command, self.host);
        match &self.status {
            HookStatus::Exited(0) => format!("{who} succeeded"),
            HookStatus::Exited(c) => format!("{who} exited with status {c}"),
            HookStatus::Signaled(s) => format!("{who} was killed by signal {s}"),
            HookStatus::TimedOut(t) => format!("{who} timed out after {} s and was killed", t.as_secs()),
            HookStatus::FailedToStart(why) => format!("{who} could not start: {why}"),
        }
    }
}

/// The log directory of one apply: `<bucket>/logs/<serial>`.
pub fn log_dir(bucket_root: &Path, serial: u64) -> PathBuf {
    bucket_root.join("logs").join(serial.to_string())
}

/// The Python a `.py` hook runs with (maand's `ResolvePythonExecutable`): the job's
/// virtualenv next to its scripts (`_modules/.venv`, then `_modules/venv`; `bin/python3`,
/// then `bin/python`) when there is one, else `python3` from `PATH`.
pub fn python_for(script: &Path) -> PathBuf {
    let modules = script.parent().unwrap_or(Path::new("."));
    for venv in [".venv", "venv"] {
        for name in ["python3", "python"] {
            let candidate = modules.join(venv).join("bin").join(name);
            if candidate.is_file() {
                // Absolute: the hook runs with the bucket root as its working directory.
                return std::path::absolute(&candidate).unwrap_or(candidate);
            }
        }
    }
    PathBuf::from("python3")
}

/// How to start the script: `.py` with the job's Python ([`python_for`]), `.js` with
/// `node`, `.sh` with bash, anything else must be executable.
fn command_for(script: &Path) -> Result<Command, String> {
    let meta = std::fs::metadata(script).map_err(|e| format!("{}: {e}", script.display()))?;
    if !meta.is_file() {
        return Err(format!("{} is not a file", script.display()));
    }
    Ok(match script.extension().and_then(|e| e.to_str()) {
        Some("py") => {
            let mut c = Command::new(python_for(script));
            c.arg(script);
            c
        }
        Some("js") => {
            let mut c = Command::new("node");
            c.arg(script);
            c
        }
        Some("sh") => {
            let mut c = Command::new("bash");
            c.arg(script);
            c
        }
        _ if meta.permissions().mode() & 0o111 == 0 => {
            return Err(format!(
                "{} is not executable; run `chmod +x {}` or name it <command>.sh / <command>.py",
                script.display(),
                script.display()
            ));
        }
        _ => Command::new(script),
    })
}

fn mkdir_private(path: &Path) -> std::io::Result<()> {
    DirBuilder::new().recursive(true).mode(0o700).create(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))
}

/// A private temp directory holding `kvform_hook.py`, removed on drop.
struct HelperDir(PathBuf);

impl HelperDir {
    fn create() -> std::io::Result<HelperDir> {
        let mut rnd = [0u8; 8];
        getrandom::fill(&mut rnd).map_err(|e| std::io::Error::other(e.to_string()))?;
        let name: String = rnd.iter().map(|b| format!("{b:02x}")).collect();
        let dir = std::env::temp_dir().join(format!("kvform-hook-{name}"));
        DirBuilder::new().mode(0o700).create(&dir)?;
        let d = HelperDir(dir);
        std::fs::write(d.0.join("kvform_hook.py"), PYTHON_HELPER)?;
        Ok(d)
    }
}

impl Drop for HelperDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The process groups of the hooks running now (leader pid = group id) and their labels.
static RUNNING: std::sync::Mutex<std::collections::BTreeMap<u32, String>> =
    std::sync::Mutex::new(std::collections::BTreeMap::new());

fn running() -> std::sync::MutexGuard<'static, std::collections::BTreeMap<u32, String>> {
    RUNNING.lock().unwrap_or_else(|p| p.into_inner())
}

/// What [`stop_running_hooks`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stopped {
    /// The hooks (`<job>/<command>@<host>`) that were running, sent SIGTERM.
    pub hooks: Vec<String>,
    /// How many of their groups were still there after the grace period (sent SIGKILL).
    pub killed: usize,
}

/// Stop every running hook: SIGTERM to its process group, SIGKILL to the groups still
/// alive after `grace`. Call after [`crate::state::interrupt::interrupt`], so none starts
/// meanwhile (a hook started concurrently sees the flag and kills itself).
pub fn stop_running_hooks(grace: Duration) -> Stopped {
    let groups: Vec<(u32, String)> = running().iter().map(|(g, l)| (*g, l.clone())).collect();
    let alive = |g: u32| unsafe { libc::kill(-(g as libc::pid_t), 0) } == 0;
    for (g, _) in &groups {
        unsafe { libc::kill(-(*g as libc::pid_t), libc::SIGTERM) };
    }
    let until = Instant::now() + grace;
    while Instant::now() < until && groups.iter().any(|(g, _)| alive(*g)) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut killed = 0;
    for (g, _) in &groups {
        if alive(*g) {
            unsafe { libc::kill(-(*g as libc::pid_t), libc::SIGKILL) };
            killed += 1;
        }
    }
    Stopped { hooks: groups.into_iter().map(|(_, l)| l).collect(), killed }
}

/// On Linux, `PR_SET_PDEATHSIG(SIGKILL)` in the child between fork and exec; if kvform
/// died before the call took effect (the child has another parent already), the child
/// does not start. Only async-signal-safe calls here.
#[cfg(target_os = "linux")]
fn die_with_parent(cmd: &mut Command) {
    let parent = unsafe { libc::getpid() };
    // SAFETY: prctl and getppid are async-signal-safe; no allocation in the closure.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::getppid() != parent {
                return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn die_with_parent(_cmd: &mut Command) {}

/// Kill a whole process group with SIGKILL.
fn kill_group(pgid: u32) {
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{pgid}")])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

enum Chunk {
    Line(String),
    Eof,
}

fn pump(stream: impl std::io::Read + Send + 'static, tx: mpsc::Sender<Chunk>) {
    std::thread::spawn(move || {
        let mut r = BufReader::new(stream);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match r.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let line = String::from_utf8_lossy(&buf);
                    let line = line.trim_end_matches(['\n', '\r']).to_string();
                    if tx.send(Chunk::Line(line)).is_err() {
                        return;
                    }
                }
            }
        }
        let _ = tx.send(Chunk::Eof);
    });
}

/// Where a hook's lines go: all of them to its log file, the last [`OUTPUT_TAIL_LINES`]
/// to the outcome. Lines are redacted by the caller before [`Capture::line`].
struct Capture {
    prefix: String,
    log: Option<File>,
    /// Where this invocation's lines start in the log file (just after its header).
    section_start: u64,
    tail: VecDeque<String>,
}

impl Capture {
    /// Open (append to) the log and write this invocation's header line.
    fn open(inv: &HookInvocation, log_dir: &Path) -> (Capture, Option<PathBuf>) {
        let log_path = log_dir.join(&inv.job).join(format!("{}@{}.log", inv.command, inv.host));
        let mut log: Option<File> = mkdir_private(&log_dir.join(&inv.job))
            .ok()
            .and_then(|_| OpenOptions::new().create(true).read(true).append(true).mode(0o600).open(&log_path).ok());
        let mut section_start = 0;
        if let Some(f) = log.as_mut() {
            match writeln!(f, "{}", header(inv)).and_then(|_| f.metadata()) {
                Ok(m) => section_start = m.len(),
                Err(_) => log = None,
            }
        }
        let path = log.is_some().then_some(log_path);
        (Capture { prefix: format!("[{}] ", inv.label()), log, section_start, tail: VecDeque::new() }, path)
    }

    fn line(&mut self, text: &str) {
        let line = format!("{}{text}", self.prefix);
        if let Some(f) = self.log.as_mut() {
            let _ = writeln!(f, "{line}");
        }
        if self.tail.len() == OUTPUT_TAIL_LINES {
            self.tail.pop_front();
        }
        self.tail.push_back(line);
    }

    /// The kept lines, after one more redaction pass with every secret the hook saw by
    /// the time it exited: a value it printed *before* writing it through the API was
    /// not known when that line arrived. This invocation's section of the log file is
    /// rewritten when the pass changes anything (best effort: an I/O error leaves it).
    fn finish(mut self, seen: &SeenSecrets) -> Vec<String> {
        if seen.is_empty() {
            return self.tail.into();
        }
        let prefix = std::mem::take(&mut self.prefix);
        let redact = |line: &str| match line.strip_prefix(prefix.as_str()) {
            Some(text) => format!("{prefix}{}", seen.redact(text)),
            None => line.to_string(),
        };
        if let Some(f) = self.log.as_mut() {
            let _ = redact_log_section(f, self.section_start, &redact);
        }
        self.tail.iter().map(|l| redact(l)).collect()
    }
}

/// Rewrite the log from `start` on with `redact` applied to every line, if it changes any.
fn redact_log_section(f: &mut File, start: u64, redact: &dyn Fn(&str) -> String) -> std::io::Result<()> {
    f.seek(SeekFrom::Start(start))?;
    let mut text = Zeroizing::new(String::new());
    f.read_to_string(&mut text)?;
    let mut out = Zeroizing::new(String::with_capacity(text.len()));
    for line in text.lines() {
        out.push_str(&redact(line));
        out.push('\n');
    }
    if *out != *text {
        f.set_len(start)?;
        f.write_all(out.as_bytes())?; // append mode: lands at the new end, `start`
    }
    Ok(())
}

/// The line that opens each invocation's section of its log. A failed or `--atomic` apply
/// reuses `logs/<serial>/`, so several attempts append to one file; the header (with the
/// command's time, which logs may carry and plans may not) keeps them apart.
pub fn header(inv: &HookInvocation) -> String {
    format!("=== {} {}@{} {} ===", inv.event.as_str(), inv.command, inv.host, crate::clock::format_time(inv.started_at))
}

/// Run one hook to completion (or timeout). Never panics on hook failure: every way a hook
/// can fail is a [`HookStatus`]. Each run is recorded with [`record_run`].
pub fn run_hook(inv: &HookInvocation, api: &ApiHandle, log_dir: &Path) -> HookOutcome {
    let outcome = run_hook_once(inv, api, log_dir);
    record_run(&inv.bucket_root.join("logs"), &outcome);
    outcome
}

/// The state keeps no hook runs, so the runner appends one JSON line per run to
/// `logs/hook-runs.jsonl` (job, event, command, host, result, duration): what `kvform
/// serve`'s `kvform_hook_runs_total` and `kvform_hook_duration_seconds` count. One
/// `write` of a line under `PIPE_BUF` with `O_APPEND`, so parallel hooks never interleave.
/// Best effort: a run whose line cannot be written still ran (its log has it).
pub fn record_run(logs: &Path, o: &HookOutcome) {
    let line = serde_json::json!({
        "job": o.job,
        "event": o.event.as_str(),
        "command": o.command,
        "host": o.host,
        "result": if o.success() { "success" } else { "failure" },
        "duration_seconds": o.duration.as_secs_f64(),
    })
    .to_string()
        + "\n";
    if DirBuilder::new().recursive(true).mode(0o700).create(logs).is_err() {
        return;
    }
    let file = logs.join("hook-runs.jsonl");
    if let Ok(mut f) = OpenOptions::new().create(true).append(true).mode(0o600).open(file) {
        let _ = f.write_all(line.as_bytes());
    }
}

fn run_hook_once(inv: &HookInvocation, api: &ApiHandle, log_dir: &Path) -> HookOutcome {
    let started = Instant::now();
    let mut outcome = HookOutcome {
        job: inv.job.clone(),
        command: inv.command.clone(),
        host: inv.host.clone(),
        event: inv.event,
        status: HookStatus::FailedToStart(String::new()),
        output: Vec::new(),
        log_file: None,
        duration: Duration::ZERO,
    };
    let (mut capture, log_file) = Capture::open(inv, log_dir);
    outcome.log_file = log_file;

    let fail = |mut o: HookOutcome, why: String, capture: Capture| {
        o.status = HookStatus::FailedToStart(why);
        o.output = capture.tail.into();
        o.duration = started.elapsed();
        o
    };
    if let Some(signal) = crate::state::interrupt::interrupted() {
        let why = format!("not started: kvform was interrupted (signal {signal})");
        capture.line(&format!("kvform: {why}"));
        return fail(outcome, why, capture);
    }
    let script = if inv.script.is_absolute() { inv.script.clone() } else { inv.bucket_root.join(&inv.script) };
    let mut cmd = match command_for(&script) {
        Ok(c) => c,
        Err(why) => {
            capture.line(&format!("kvform: cannot start hook: {why}"));
            return fail(outcome, why, capture);
        }
    };
    let helper = match HelperDir::create() {
        Ok(h) => h,
        Err(e) => {
            let why = format!("cannot write the Python helper to a temp dir: {e}");
            return fail(outcome, why, capture);
        }
    };
    let token = match api.issue(inv.identity()) {
        Ok(t) => t,
        Err(e) => return fail(outcome, e.to_string(), capture),
    };
    let pythonpath = match std::env::var_os("PYTHONPATH").filter(|p| !p.is_empty()) {
        Some(old) => {
            let mut p = helper.0.clone().into_os_string();
            p.push(":");
            p.push(old);
            p
        }
        None => helper.0.clone().into_os_string(),
    };
    cmd.current_dir(&inv.bucket_root)
        .env("KVFORM_API", api.base_url())
        .env("KVFORM_TOKEN", token.as_str())
        .env("ALLOCATION_ID", inv.alloc_id.to_string())
        .env("ALLOCATION_IP", &inv.host)
        .env("ALLOCATION_INDEX", inv.alloc_index.to_string())
        .env("JOB", &inv.job)
        .env("EVENT", inv.event.as_str())
        .env("COMMAND", &inv.command)
        .env("DISABLED", if inv.disabled { "1" } else { "0" })
        .env("CURRENT_VERSION", &inv.current_version)
        .env("NEW_VERSION", &inv.new_version)
        .env("JOB_COMMAND_API_HOST", "127.0.0.1")
        .env("PYTHONPATH", pythonpath)
        .envs(inv.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    die_with_parent(&mut cmd);
    let mut registry = running();
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            api.revoke(&token);
            let why = format!("{}: {e}", script.display());
            capture.line(&format!("kvform: cannot start hook: {why}"));
            return fail(outcome, why, capture);
        }
    };
    let pgid = child.id();
    registry.insert(pgid, inv.label());
    drop(registry);
    if crate::state::interrupt::interrupted().is_some() {
        // Interrupted while starting: `stop_running_hooks` may have looked before the insert.
        unsafe { libc::kill(-(pgid as libc::pid_t), libc::SIGKILL) };
    }
    let (tx, rx) = mpsc::channel();
    if let Some(out) = child.stdout.take() {
        pump(out, tx.clone());
    }
    if let Some(err) = child.stderr.take() {
        pump(err, tx.clone());
    }
    drop(tx);

    let deadline = started + inv.timeout;
    let mut open_streams = 2;
    let mut status: Option<HookStatus> = None;
    let mut exited_at: Option<Instant> = None;
    loop {
        match rx.recv_timeout(Duration::from_millis(20)) {
            Ok(Chunk::Line(l)) => capture.line(&api.redact(&token, &l)),
            Ok(Chunk::Eof) => open_streams -= 1,
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => open_streams = 0,
        }
        if status.is_none() {
            match child.try_wait() {
                Ok(Some(st)) => {
                    status = Some(match (st.code(), st.signal()) {
                        (Some(c), _) => HookStatus::Exited(c),
                        (None, Some(s)) => HookStatus::Signaled(s),
                        (None, None) => HookStatus::Exited(-1),
                    });
                    exited_at = Some(Instant::now());
                }
                Ok(None) if Instant::now() >= deadline => {
                    kill_group(pgid);
                    let _ = child.kill();
                    let _ = child.wait();
                    capture.line(&format!(
                        "kvform: timed out after {} s; killed the hook's process group",
                        inv.timeout.as_secs()
                    ));
                    status = Some(HookStatus::TimedOut(inv.timeout));
                    exited_at = Some(Instant::now());
                }
                Ok(None) => {}
                Err(e) => {
                    kill_group(pgid);
                    status = Some(HookStatus::FailedToStart(format!("cannot wait for the hook: {e}")));
                    exited_at = Some(Instant::now());
                }
            }
        }
        if let Some(t) = exited_at
            && (open_streams == 0 || t.elapsed() >= DRAIN_GRACE)
        {
            break;
        }
    }
    running().remove(&pgid);
    if let Some(signal) = crate::state::interrupt::interrupted() {
        capture.line(&format!("kvform: stopped the hook's process group: kvform was interrupted (signal {signal})"));
    }
    // Drain whatever already arrived.
    while let Ok(Chunk::Line(l)) = rx.try_recv() {
        capture.line(&api.redact(&token, &l));
    }
    let (forgotten, seen) = api.retire(&token);
    if forgotten > 0 {
        capture.line(&format!("kvform: released {forgotten} semaphore hold(s) the hook did not release"));
    }
    drop(helper);
    outcome.status = status.unwrap_or(HookStatus::Exited(-1));
    outcome.output = capture.finish(&seen);
    outcome.duration = started.elapsed();
    outcome
}

/// Run one rollout batch: at most `parallelism` hooks at a time (at least 1), results in
/// the order of `invocations`.
pub fn run_batch(
    invocations: &[HookInvocation],
    parallelism: usize,
    api: &ApiHandle,
    log_dir: &Path,
) -> Vec<HookOutcome> {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<HookOutcome>>> = Mutex::new(vec![None; invocations.len()]);
    let workers = parallelism.max(1).min(invocations.len());
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(inv) = invocations.get(i) else { break };
                    let o = run_hook(inv, api, log_dir);
                    results.lock().unwrap_or_else(|p| p.into_inner())[i] = Some(o);
                }
            });
        }
    });
    results.into_inner().unwrap_or_else(|p| p.into_inner()).into_iter().map(|o| o.expect("every hook ran")).collect()
}
