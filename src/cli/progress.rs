//! Progress bars of the long offline verbs (`verify`, `rebuild`, `export`, `restore`): on a
//! terminal only (indicatif hides them when standard error is not one), and drawn only once the
//! total is known and above zero, so no bar ever shows a full "0/0" before work starts.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// One bar, hidden until [`Progress::update`] gives it a total.
pub struct Progress {
    bar: ProgressBar,
}

impl Progress {
    /// A bar counting positions (`done/total`), labelled `what`.
    pub fn new(what: &str) -> Progress {
        Progress::styled(what, "{msg:<24} [{bar:40}] {pos}/{len} ({eta})")
    }

    /// A bar counting bytes, labelled `what`.
    pub fn bytes(what: &str) -> Progress {
        Progress::styled(what, "{msg:<24} [{bar:40}] {bytes}/{total_bytes} ({eta})")
    }

    fn styled(what: &str, template: &str) -> Progress {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden());
        bar.set_style(
            ProgressStyle::with_template(template)
                .expect("valid progress template")
                .progress_chars("=> "),
        );
        bar.set_message(what.to_owned());
        Progress { bar }
    }

    /// `done` of `total`; the bar appears with the first total above zero.
    pub fn update(&self, done: u64, total: u64) {
        if total == 0 {
            return;
        }
        if self.bar.length().is_none() {
            self.bar.set_length(total);
            self.bar.set_draw_target(ProgressDrawTarget::stderr());
        }
        self.bar.set_length(total);
        self.bar.set_position(done.min(total));
    }

    /// Removes the bar.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// A reader that counts the bytes read through it (for a bar over a file's size).
pub struct Counted<R> {
    inner: R,
    read: std::rc::Rc<std::cell::Cell<u64>>,
}

impl<R> Counted<R> {
    /// Counts what is read from `inner` into `read`.
    pub fn new(inner: R, read: std::rc::Rc<std::cell::Cell<u64>>) -> Counted<R> {
        Counted { inner, read }
    }
}

impl<R: std::io::Read> std::io::Read for Counted<R> {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buffer)?;
        self.read.set(self.read.get() + n as u64);
        Ok(n)
    }
}
