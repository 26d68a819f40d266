//! A process on a pseudo-terminal: what it draws is collected, keys are typed into it.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub struct Pty {
    pub child: Child,
    pub screen: Arc<Mutex<String>>,
    writer: std::fs::File,
}

impl Pty {
    pub fn spawn(mut cmd: Command) -> Pty {
        let (mut master, mut slave) = (0, 0);
        // SAFETY: openpty fills two fds; no name, default termios and window size.
        let rc = unsafe {
            libc::openpty(
                &mut master,
                &mut slave,
                std::ptr::null_mut(),
                std::ptr::null(),
                std::ptr::null(),
            )
        };
        assert_eq!(rc, 0);
        // SAFETY: fresh fds from openpty, each owned once.
        let (master, slave) =
            unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
        let child = cmd
            .stdin(Stdio::from(slave.try_clone().unwrap()))
            .stdout(Stdio::from(slave.try_clone().unwrap()))
            .stderr(Stdio::from(slave))
            .spawn()
            .unwrap();
        let screen = Arc::new(Mutex::new(String::new()));
        let mut reader = std::fs::File::from(master.try_clone().unwrap());
        let sink = screen.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Pty {
            child,
            screen,
            writer: std::fs::File::from(master),
        }
    }

    pub fn type_keys(&mut self, keys: &str) {
        self.writer.write_all(keys.as_bytes()).unwrap();
        self.writer.flush().unwrap();
    }

    /// Waits until the screen shows `what` after byte `from`; returns where it ends.
    pub fn wait_for(&self, what: &str, from: usize) -> Option<usize> {
        let mut at = None;
        super::process::wait_for(Duration::from_secs(30), || {
            let s = self.screen.lock().unwrap();
            at = s
                .get(from..)
                .and_then(|rest| rest.find(what))
                .map(|i| from + i + what.len());
            at.is_some()
        });
        at
    }

    pub fn text(&self) -> String {
        self.screen.lock().unwrap().clone()
    }

    pub fn len(&self) -> usize {
        self.screen.lock().unwrap().len()
    }
}

impl Drop for Pty {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
