//! Apply progress on stderr: indicatif bars (jobs and allocations done/total) when stderr is
//! a terminal, plain lines otherwise (logs, CI). `--quiet` hides both.

use super::Printer;
use crate::apply::{Progress, ProgressEvent};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The right progress for this invocation.
pub fn for_printer(printer: &Printer) -> (Box<dyn Progress>, Lines) {
    if printer.quiet {
        (Box::new(crate::apply::NoProgress), Lines::Quiet)
    } else if printer.stderr_is_tty() {
        let bars = BarProgress::new();
        let lines = Lines::Bars(bars.multi.clone());
        (Box::new(bars), lines)
    } else {
        (Box::new(PlainProgress), Lines::Stderr)
    }
}

/// Where extra status lines (one per hook run) go while progress is shown: above the bars on
/// a terminal, so they do not tear the bars apart; plain stderr otherwise.
#[derive(Clone)]
pub enum Lines {
    Quiet,
    Stderr,
    Bars(MultiProgress),
}

impl Lines {
    pub fn line(&self, text: &str) {
        match self {
            Lines::Quiet => {}
            Lines::Stderr => super::printer::stderr_line(text),
            Lines::Bars(multi) => {
                let _ = multi.println(text);
            }
        }
    }
}

/// One line per event, to stderr.
pub struct PlainProgress;

/// The line for an event, or `None` for events without one.
pub fn line(event: &ProgressEvent<'_>) -> Option<String> {
    Some(match event {
        ProgressEvent::Started { jobs, allocations } => {
            format!("Applying: {jobs} job(s), {allocations} allocation(s) in batches")
        }
        ProgressEvent::BucketLevel { namespaces } => format!("bucket level: {namespaces} namespace(s) written"),
        ProgressEvent::JobStarted { wave, job } => format!("wave {wave}: {job}: started"),
        ProgressEvent::BatchDone { job, kind, hosts } => {
            format!("{job}: {} batch done: {}", kind.as_str(), hosts.join(", "))
        }
        ProgressEvent::JobDone { job } => format!("{job}: done"),
        ProgressEvent::JobFailed { job, message } => format!("{job}: FAILED: {message}"),
        ProgressEvent::JobSkipped { job, because } => {
            format!("{job}: skipped (it demands {because}, which did not apply)")
        }
        ProgressEvent::Warning(w) => format!("warning: {w}"),
        ProgressEvent::PostBuild { job } => format!("{job}: post_build"),
        ProgressEvent::Finished => return None,
    })
}

impl Progress for PlainProgress {
    fn event(&mut self, event: ProgressEvent<'_>) {
        if let Some(l) = line(&event) {
            super::printer::stderr_line(&l);
        }
    }
}

/// Two bars (jobs, allocations) with the current step as message; other lines printed
/// above the bars.
pub struct BarProgress {
    multi: MultiProgress,
    jobs: ProgressBar,
    allocations: ProgressBar,
}

impl BarProgress {
    pub fn new() -> BarProgress {
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
        let style = ProgressStyle::with_template("{prefix:>12} [{bar:30}] {pos}/{len} {msg}")
            .expect("a valid template")
            .progress_chars("=> ");
        let jobs = multi.add(ProgressBar::new(0).with_style(style.clone()).with_prefix("jobs"));
        let allocations = multi.add(ProgressBar::new(0).with_style(style).with_prefix("allocations"));
        BarProgress { multi, jobs, allocations }
    }
}

impl Default for BarProgress {
    fn default() -> Self {
        BarProgress::new()
    }
}

impl Progress for BarProgress {
    fn event(&mut self, event: ProgressEvent<'_>) {
        match &event {
            ProgressEvent::Started { jobs, allocations } => {
                self.jobs.set_length(*jobs as u64);
                self.allocations.set_length(*allocations as u64);
            }
            ProgressEvent::JobStarted { job, .. } => self.jobs.set_message(job.to_string()),
            ProgressEvent::BatchDone { hosts, .. } => self.allocations.inc(hosts.len() as u64),
            ProgressEvent::JobDone { .. } | ProgressEvent::JobSkipped { .. } => self.jobs.inc(1),
            ProgressEvent::Finished => {
                self.jobs.finish_and_clear();
                self.allocations.finish_and_clear();
                return;
            }
            _ => {}
        }
        if let ProgressEvent::JobFailed { .. } = &event {
            self.jobs.inc(1);
        }
        if matches!(
            event,
            ProgressEvent::JobFailed { .. }
                | ProgressEvent::JobSkipped { .. }
                | ProgressEvent::Warning(_)
                | ProgressEvent::PostBuild { .. }
        ) && let Some(l) = line(&event)
        {
            let _ = self.multi.println(l);
        }
    }
}
