//! What the file system holding the data dir can take: its size (a `--capacity` beyond it is
//! refused), its free space (a full disk recovers when there is room again), and whether an
//! error means it is full.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Below this much free space a full disk stays full: room for a track or two, not a byte.
pub const ROOM_AGAIN: u64 = 16 << 20;

fn statvfs(path: &Path) -> Option<libc::statvfs> {
    let c = CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs only writes into the zeroed struct we pass, for a valid C string.
    unsafe {
        let mut st: libc::statvfs = std::mem::zeroed();
        (libc::statvfs(c.as_ptr(), &mut st) == 0).then_some(st)
    }
}

/// Size of the file system holding `path`, in bytes.
pub fn filesystem_size(path: &Path) -> Option<u64> {
    statvfs(path).map(|s| s.f_blocks.saturating_mul(s.f_frsize))
}

/// Bytes an unprivileged writer can still use there.
pub fn available_bytes(path: &Path) -> Option<u64> {
    statvfs(path).map(|s| s.f_bavail.saturating_mul(s.f_frsize))
}

/// Whether an error (anywhere in its chain) is the disk or the user's quota being full.
pub fn is_disk_full(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<std::io::Error>().is_some_and(|io| {
            matches!(io.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT))
                || io.kind() == std::io::ErrorKind::StorageFull
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn tells_a_full_disk_from_other_errors() {
        let full: anyhow::Result<()> =
            Err(std::io::Error::from_raw_os_error(libc::ENOSPC)).context("cannot write blob");
        assert!(is_disk_full(&full.unwrap_err()));
        let other: anyhow::Result<()> =
            Err(std::io::Error::from_raw_os_error(libc::EIO)).context("cannot write blob");
        assert!(!is_disk_full(&other.unwrap_err()));
        assert!(!is_disk_full(&anyhow::anyhow!(
            "content does not match its hash"
        )));
        let dir = tempfile::tempdir().unwrap();
        let size = filesystem_size(dir.path()).unwrap();
        let free = available_bytes(dir.path()).unwrap();
        assert!(size > 0 && free <= size, "{free} of {size}");
        assert!(filesystem_size(Path::new("/no/such/dir")).is_none());
    }
}
