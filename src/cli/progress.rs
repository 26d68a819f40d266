//! A progress bar on a terminal, nothing otherwise (scripts get clean output).

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;

#[derive(Default)]
pub struct Progress {
    bar: Option<ProgressBar>,
}

impl Progress {
    pub fn update(&mut self, done: u64, total: u64) {
        self.draw(
            done,
            total,
            "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            None,
        );
    }

    /// One bar for an import: files done of all, and bytes.
    pub fn update_files(&mut self, files_done: u64, files: u64, done: u64, total: u64) {
        self.draw(
            done,
            total,
            "{msg} {bar:30} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            Some(files_line(files_done, files)),
        );
    }

    /// Runs `print` with the bar out of the way, then draws it again below what was printed.
    pub fn above<T>(&self, print: impl FnOnce() -> T) -> T {
        match &self.bar {
            Some(b) => b.suspend(print),
            None => print(),
        }
    }

    pub fn clear(&mut self) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
    }

    fn draw(&mut self, done: u64, total: u64, template: &str, message: Option<String>) {
        if !std::io::stderr().is_terminal() {
            return;
        }
        if self.bar.is_none() {
            // Set up hidden, so the first frame drawn already shows where we are.
            let b = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::hidden());
            if let Ok(style) = ProgressStyle::with_template(template) {
                b.set_style(style);
            }
            self.bar = Some(b);
        }
        let Some(bar) = &self.bar else { return };
        if let Some(m) = message {
            bar.set_message(m);
        }
        bar.set_length(total);
        bar.set_position(done);
        if bar.is_hidden() {
            bar.set_draw_target(ProgressDrawTarget::stderr());
        }
    }
}

/// `files 3/20`, right-aligned to the total's width so the bar does not jump.
pub fn files_line(done: u64, total: u64) -> String {
    let width = total.to_string().len();
    format!("files {done:>width$}/{total}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn files_line_keeps_its_width() {
        assert_eq!(super::files_line(3, 120), "files   3/120");
        assert_eq!(super::files_line(120, 120), "files 120/120");
    }
}
