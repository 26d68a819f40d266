//! Seeking while streaming from a source that reads from anywhere: where playback lands
//! (sample-exact for flac and wav, within 50 ms for mp3 and ogg), the next track after a
//! seek past the end, and the slow path on a stream that cannot seek.

use std::io::Cursor;
use std::time::{Duration, Instant};

use super::tests_gapless::{Seekable, gapless, mono_wav};
use super::tests_play::read_wav;
use super::*;

/// The files of a queue, readable from anywhere (`true`) or only in order.
struct Files(Vec<(Vec<u8>, &'static str)>, bool);

impl TrackSource for Files {
    fn open(&mut self, next: Next) -> Option<OpenedTrack> {
        let index = match next {
            Next::First => 0,
            Next::After(i) => i + 1,
            Next::Jump(i) => i,
        };
        let (data, ext) = self.0.get(index)?.clone();
        let reader: Box<dyn TrackBytes> = if self.1 {
            Box::new(Seekable(Cursor::new(data)))
        } else {
            Box::new(ForwardOnly(Cursor::new(data)))
        };
        Some(OpenedTrack {
            reader,
            ext: Some(ext.to_string()),
            index,
        })
    }
}

fn wait_outcome(c: &PlaybackControl, id: u64) -> SeekOutcome {
    loop {
        if let Some(o) = c.seek_outcome(id) {
            return o;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Plays `file` to a WAV file, pausing the writer so the ring fills, seeking to `to_s`,
/// then resuming: the output is a prefix of the track and then the track from the target.
fn seek_while_paused(file: &str, ext: &'static str, to_s: f64) -> (Vec<f32>, SeekOutcome) {
    seek_bytes_while_paused(gapless(file), file, ext, to_s)
}

fn seek_bytes_while_paused(
    data: Vec<u8>,
    file: &str,
    ext: &'static str,
    to_s: f64,
) -> (Vec<f32>, SeekOutcome) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.wav");
    let control = PlaybackControl::new();
    control.pause();
    let c = control.clone();
    let seeker = std::thread::spawn(move || {
        // The paused writer takes nothing: by now the decoder has filled the ring.
        std::thread::sleep(Duration::from_millis(200));
        let id = c.request_seek(0, to_s);
        let outcome = wait_outcome(&c, id);
        c.resume();
        outcome
    });
    let source = Files(vec![(data, ext)], true);
    let stats = play_source(
        Box::new(source),
        OutputKind::Wav(path.clone()),
        Instant::now(),
        control,
    )
    .unwrap();
    let outcome = seeker.join().unwrap();
    assert_eq!(stats.seeks.len(), 1, "{file}: {stats:?} {outcome:?}");
    assert_eq!(stats.tracks, 1, "{file}");
    (read_wav(&path).2, outcome)
}

#[test]
fn a_lossless_seek_lands_on_the_exact_sample() {
    let flac = gapless("part1.flac");
    let (_, _, whole) = decode_all(&flac, Some("flac")).unwrap();
    // The same samples as a 16-bit WAV.
    let wav = mono_wav(&whole);
    for (data, file, ext) in [(flac, "part1.flac", "flac"), (wav, "part1.wav", "wav")] {
        let to = 1.0;
        let target = (to * 44_100.0) as usize;
        let (got, outcome) = seek_bytes_while_paused(data, file, ext, to);
        assert_eq!(outcome, SeekOutcome::Landed(to), "{file}");
        let after = whole.len() - target;
        assert!(got.len() >= after, "{file}: {} samples", got.len());
        let k = got.len() - after;
        assert!(
            got[..k] == whole[..k],
            "{file}: the part before the seek differs"
        );
        assert!(
            got[k..] == whole[target..],
            "{file}: the part after the seek differs"
        );
    }
}

#[test]
fn a_lossy_seek_lands_within_50_ms() {
    for (file, ext) in [("whole.mp3", "mp3"), ("whole.ogg", "ogg")] {
        let (_, _, whole) = decode_all(&gapless(file), Some(ext)).unwrap();
        let to = 3.2;
        let (got, outcome) = seek_while_paused(file, ext, to);
        let SeekOutcome::Landed(at) = outcome else {
            panic!("{file}: {outcome:?}");
        };
        assert!((at - to).abs() <= 0.05, "{file}: landed at {at}");
        // The last second of the output is the track's last second, whatever was before.
        let tail = 44_100;
        let (g, w) = (&got[got.len() - tail..], &whole[whole.len() - tail..]);
        let err: f64 = g.iter().zip(w).map(|(a, b)| f64::from(a - b).powi(2)).sum();
        let sig: f64 = w.iter().map(|&b| f64::from(b).powi(2)).sum();
        assert!(
            10.0 * (sig / err.max(1e-12)).log10() > 20.0,
            "{file}: tail differs"
        );
        // What was played after the seek is as long as the track from where it landed.
        let after_seek = whole.len() as f64 / 44_100.0 - at;
        assert!(got.len() as f64 / 44_100.0 >= after_seek - 0.05, "{file}");
    }
}

#[test]
fn a_seek_past_the_end_plays_the_next_track_and_a_plain_stream_seeks_by_reading_forward() {
    let control = PlaybackControl::new();
    let c = control.clone();
    let seeker = std::thread::spawn(move || {
        while c.heard_track() != Some(0) {
            std::thread::sleep(Duration::from_millis(2));
        }
        let id = c.request_seek(0, 99.0);
        wait_outcome(&c, id)
    });
    let files = vec![
        (gapless("part1.flac"), "flac"),
        (gapless("part2.flac"), "flac"),
    ];
    let stats = play_source(
        Box::new(Files(files, true)),
        OutputKind::Null,
        Instant::now(),
        control,
    )
    .unwrap();
    assert_eq!(seeker.join().unwrap(), SeekOutcome::NextTrack);
    assert_eq!(stats.tracks, 2);
    let secs = stats.frames as f64 / 44_100.0;
    assert!(secs < 2.5, "played {secs} s: part 1 was not cut short");

    // A forward-only stream cannot seek back: the slow path opens it again from the start
    // and reads forward to the target.
    let control = PlaybackControl::new();
    let c = control.clone();
    let seeker = std::thread::spawn(move || {
        while c.status().elapsed_s < 0.5 {
            std::thread::sleep(Duration::from_millis(2));
        }
        let id = c.request_seek(0, 0.1);
        wait_outcome(&c, id)
    });
    let files = vec![(gapless("part1.flac"), "flac")];
    let stats = play_source(
        Box::new(Files(files, false)),
        OutputKind::Null,
        Instant::now(),
        control,
    )
    .unwrap();
    match seeker.join().unwrap() {
        SeekOutcome::Landed(at) => assert!((at - 0.1).abs() < 0.05, "landed at {at}"),
        other => panic!("{other:?}"),
    }
    // About 0.5 s before the seek and 1.4 s after it.
    let secs = stats.frames as f64 / 44_100.0;
    assert!((1.7..2.2).contains(&secs), "played {secs} s");
}

#[test]
fn an_mp4_with_its_index_at_the_end_seeks_too() {
    let data = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/tone-moov-at-end.m4a"),
    )
    .unwrap();
    let (rate, channels, whole) = decode_all(&data, Some("m4a")).unwrap();
    let duration = whole.len() as f64 / (rate as f64 * channels as f64);
    let to = duration / 2.0;
    let (got, outcome) = seek_bytes_while_paused(data, "tone-moov-at-end.m4a", "m4a", to);
    let SeekOutcome::Landed(at) = outcome else {
        panic!("{outcome:?}");
    };
    assert!((at - to).abs() <= 0.05, "landed at {at} for {to}");
    // Output: what played before the seek, then the track from where it landed to its end.
    let tail = (rate as usize / 4) * channels as usize;
    let (g, w) = (&got[got.len() - tail..], &whole[whole.len() - tail..]);
    let err: f64 = g.iter().zip(w).map(|(a, b)| f64::from(a - b).powi(2)).sum();
    let sig: f64 = w.iter().map(|&b| f64::from(b).powi(2)).sum();
    assert!(10.0 * (sig / err.max(1e-12)).log10() > 20.0, "tail differs");
}
