//! Keras's progress output for `fit`, `evaluate` and `predict`: with `verbose` 1 on a
//! terminal, a bar per epoch drawn by `indicatif` (steps done / total, ETA, time per
//! step, running metrics); otherwise (or with `verbose` 2) one line per epoch,
//! `45/45 - 1s - 3ms/step - accuracy: 0.9125 - loss: 0.3090`, as Keras prints it.

use crate::keras::callbacks::Logs;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::time::{Duration, Instant};

/// Keras's value format: 4 decimals, or scientific notation for tiny values.
pub(crate) fn format_value(v: f64) -> String {
    if v.abs() > 1e-3 || v == 0.0 {
        format!("{v:.4}")
    } else {
        let s = format!("{v:.4e}");
        // Python writes the exponent with a sign and two digits: 1.2345e-05.
        match s.split_once('e') {
            Some((m, e)) => {
                let (sign, digits) = e.strip_prefix('-').map_or(("+", e), |d| ("-", d));
                format!("{m}e{sign}{digits:0>2}")
            }
            None => s,
        }
    }
}

/// `" - accuracy: 0.9125 - loss: 0.3090"` for the logs, in their (sorted) order.
pub(crate) fn format_logs(logs: &Logs) -> String {
    logs.iter()
        .map(|(k, v)| format!(" - {k}: {}", format_value(*v)))
        .collect()
}

/// Keras's time per step: `3s/step`, `12ms/step` or `830us/step`.
fn per_step(elapsed: Duration, steps: usize) -> String {
    let t = elapsed.as_secs_f64() / steps.max(1) as f64;
    if t >= 1.0 || t == 0.0 {
        format!("{t:.0}s/step")
    } else if t >= 1e-3 {
        format!("{:.0}ms/step", t * 1e3)
    } else {
        format!("{:.0}us/step", t * 1e6)
    }
}

/// The progress of one pass (an epoch, an evaluation, a prediction) over `steps` batches
/// (unknown for some datasets).
pub(crate) struct Progress {
    verbose: u8,
    steps: Option<usize>,
    start: Instant,
    bar: Option<ProgressBar>,
}

impl Progress {
    /// Starts a pass; `verbose` 0 prints nothing.
    pub fn new(verbose: u8, steps: Option<usize>) -> Progress {
        let bar = (verbose == 1 && std::io::stdout().is_terminal()).then(|| {
            let width = steps.unwrap_or(1).to_string().len();
            let bar = ProgressBar::with_draw_target(
                steps.map(|s| s as u64),
                ProgressDrawTarget::stdout_with_hz(10),
            );
            let template = format!("{{pos:>{width}}}/{{len}} {{bar:20.bold/dim}} {{msg}}");
            if let Ok(style) = ProgressStyle::with_template(&template) {
                bar.set_style(style.progress_chars("━━━"));
            }
            bar
        });
        Progress {
            verbose,
            steps,
            start: Instant::now(),
            bar,
        }
    }

    /// Whether a bar shows each step (so the running logs are worth computing).
    pub fn draws_steps(&self) -> bool {
        self.bar.is_some()
    }

    /// After batch `step` (1-based) with the running logs.
    pub fn update(&self, step: usize, logs: &Logs) {
        if let Some(bar) = &self.bar {
            let elapsed = self.start.elapsed();
            let left = self.steps.map_or(0, |s| s.saturating_sub(step));
            let eta = elapsed.as_secs_f64() / step.max(1) as f64 * left as f64;
            bar.set_position(step as u64);
            bar.set_message(format!(
                "{eta:.0}s {}{}",
                per_step(elapsed, step),
                format_logs(logs)
            ));
        }
    }

    /// Ends the pass after `done` steps with the final logs (validation metrics
    /// included).
    pub fn finish(&self, logs: &Logs, done: usize) {
        let elapsed = self.start.elapsed();
        let secs = elapsed.as_secs_f64().round();
        match &self.bar {
            Some(bar) => {
                bar.set_length(done as u64);
                bar.set_position(done as u64);
                bar.finish_with_message(format!(
                    "{secs:.0}s {}{}",
                    per_step(elapsed, done),
                    format_logs(logs)
                ));
            }
            None if self.verbose > 0 => println!(
                "{done}/{done} - {secs:.0}s - {}{}",
                per_step(elapsed, done),
                format_logs(logs)
            ),
            None => {}
        }
    }
}
