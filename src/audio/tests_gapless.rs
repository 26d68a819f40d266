//! A queue plays an album cut from one recording back as that recording: nothing inserted
//! at the cuts, nothing lost, encoder delay and padding trimmed (tests/fixtures/gapless,
//! made by assets/make-gapless-fixtures.sh).

use std::io::Cursor;
use std::time::Instant;

use super::tests_play::read_wav;
use super::*;

/// Samples per part: 1.5 s at 44.1 kHz, mono.
const PART: usize = 66_150;

pub(super) fn gapless(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/fixtures/gapless/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// A 16-bit mono 44.1 kHz WAV of decoded 16-bit samples (which it holds exactly).
pub(super) fn mono_wav(samples: &[f32]) -> Vec<u8> {
    let mut wav = Cursor::new(Vec::new());
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 44_100,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::new(&mut wav, spec).unwrap();
    for &s in samples {
        w.write_sample((s * 32768.0).round() as i16).unwrap();
    }
    w.finalize().unwrap();
    wav.into_inner()
}

/// In-memory bytes that may be read from anywhere, as a range fetch can.
pub(super) struct Seekable(pub(super) Cursor<Vec<u8>>);

impl std::io::Read for Seekable {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.read(buf)
    }
}

impl std::io::Seek for Seekable {
    fn seek(&mut self, to: std::io::SeekFrom) -> std::io::Result<u64> {
        self.0.seek(to)
    }
}

impl TrackBytes for Seekable {
    fn random_access_len(&self) -> Option<u64> {
        Some(self.0.get_ref().len() as u64)
    }
}

/// Hands out the given files in order, like a queue of tracks.
struct Album(Vec<(Vec<u8>, &'static str)>);

impl TrackSource for Album {
    fn open(&mut self, next: Next) -> Option<OpenedTrack> {
        let index = match next {
            Next::First => 0,
            Next::After(i) => i + 1,
            Next::Jump(i) => i,
        };
        let (data, ext) = self.0.get(index)?.clone();
        Some(OpenedTrack {
            reader: Box::new(Seekable(Cursor::new(data))),
            ext: Some(ext.to_string()),
            index,
        })
    }
}

fn album(ext: &'static str) -> Album {
    Album(
        (1..=3)
            .map(|i| (gapless(&format!("part{i}.{ext}")), ext))
            .collect(),
    )
}

fn play_to_wav(album: Album) -> (PlaybackStats, Vec<f32>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("album.wav");
    let stats = play_source(
        Box::new(album),
        OutputKind::Wav(path.clone()),
        Instant::now(),
        PlaybackControl::new(),
    )
    .unwrap();
    let (rate, ch, samples) = read_wav(&path);
    assert_eq!((rate, ch), (44_100, 1));
    (stats, samples)
}

/// The lag (in samples) that best aligns `got` with `want` around `at`.
fn best_lag(got: &[f32], want: &[f32], at: usize) -> i64 {
    let window = 2048usize;
    let mut best = (f64::MIN, 0i64);
    for lag in -200i64..=200 {
        let from = at.saturating_sub(window);
        let dot: f64 = want
            .iter()
            .enumerate()
            .skip(from)
            .take(2 * window)
            .filter_map(|(k, &w)| {
                let j = usize::try_from(k as i64 + lag).ok()?;
                got.get(j).map(|&g| f64::from(w) * f64::from(g))
            })
            .sum();
        if dot > best.0 {
            best = (dot, lag);
        }
    }
    best.1
}

fn snr_db(got: &[f32], want: &[f32]) -> f64 {
    let n = got.len().min(want.len());
    let signal: f64 = want[..n].iter().map(|&s| f64::from(s).powi(2)).sum();
    let noise: f64 = got[..n]
        .iter()
        .zip(&want[..n])
        .map(|(&a, &b)| (f64::from(a) - f64::from(b)).powi(2))
        .sum();
    10.0 * (signal / noise.max(1e-12)).log10()
}

#[test]
fn a_lossless_album_plays_back_as_the_recording_sample_for_sample() {
    let mut expected = Vec::new();
    let mut wav_parts = Vec::new();
    for i in 1..=3 {
        let (rate, ch, part) =
            decode_all(&gapless(&format!("part{i}.flac")), Some("flac")).unwrap();
        assert_eq!((rate, ch, part.len()), (44_100, 1, PART));
        // The same part as 16-bit WAV: lossless too, so the same samples.
        wav_parts.push((mono_wav(&part), "wav"));
        expected.extend(part);
    }
    for (what, album) in [("flac", album("flac")), ("wav", Album(wav_parts))] {
        let (stats, got) = play_to_wav(album);
        assert_eq!(stats.tracks, 3, "{what}");
        assert_eq!(stats.gaps_ms, vec![0.0, 0.0], "{what}");
        assert_eq!(got.len(), expected.len(), "{what}");
        assert!(
            got == expected,
            "{what}: the album differs from the recording"
        );
    }
}

#[test]
fn a_lossy_album_joins_within_a_millisecond_of_the_continuous_decode() {
    for ext in ["mp3", "ogg"] {
        let (_, _, whole) = decode_all(&gapless(&format!("whole.{ext}")), Some(ext)).unwrap();
        let (stats, got) = play_to_wav(album(ext));
        assert_eq!(stats.tracks, 3, "{ext}");
        // Encoder delay and padding trimmed: the same length as the continuous decode.
        let diff = got.len().abs_diff(whole.len());
        assert!(
            diff <= 44,
            "{ext}: {} samples vs {} continuous",
            got.len(),
            whole.len()
        );
        for cut in [PART, 2 * PART] {
            let lag = best_lag(&got, &whole, cut);
            assert!(
                lag.abs() <= 44,
                "{ext}: the cut at {cut} is {lag} samples off"
            );
        }
        let snr = snr_db(&got, &whole);
        eprintln!(
            "{ext}: {} samples (continuous {}), SNR {snr:.1} dB",
            got.len(),
            whole.len()
        );
        assert!(
            snr >= 30.0,
            "{ext}: SNR {snr:.1} dB against the continuous decode"
        );
    }
}

#[test]
fn an_album_on_the_null_clock_has_no_gap_and_no_underrun() {
    for ext in ["flac", "mp3", "ogg"] {
        let stats = play_source(
            Box::new(album(ext)),
            OutputKind::Null,
            Instant::now(),
            PlaybackControl::new(),
        )
        .unwrap();
        assert_eq!(stats.tracks, 3, "{ext}");
        assert_eq!(stats.gaps_ms, vec![0.0, 0.0], "{ext}");
        assert_eq!(stats.underruns, 0, "{ext}");
        let secs = stats.frames as f64 / 44_100.0;
        assert!((secs - 4.5).abs() < 0.01, "{ext}: played {secs} s");
    }
}

#[test]
fn a_jump_drops_what_is_buffered_of_the_track_being_left() {
    let control = PlaybackControl::new();
    let c = control.clone();
    let jumper = std::thread::spawn(move || {
        while c.heard_track() != Some(0) {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        std::thread::sleep(std::time::Duration::from_millis(300));
        c.request_jump(2);
    });
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let stats = play_source(
        Box::new(album("flac")),
        OutputKind::Null,
        Instant::now(),
        control,
    )
    .unwrap();
    jumper.join().unwrap();
    // About 0.3 s of part 1, none of part 2, all 1.5 s of part 3.
    let secs = stats.frames as f64 / 44_100.0;
    assert!((1.65..2.1).contains(&secs), "played {secs} s");
    assert_eq!(stats.tracks, 2);
    assert!(started.elapsed().as_secs_f64() < 2.6);
    drop(dir);
}

#[test]
fn later_tracks_are_mapped_and_resampled_to_the_first_tracks_format() {
    // A 1 s stereo 22.05 kHz WAV after the 1.5 s mono 44.1 kHz flac part.
    let mut wav = Cursor::new(Vec::new());
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: 22_050,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::new(&mut wav, spec).unwrap();
    for i in 0..22_050 {
        let s = ((i as f64 * 440.0 * std::f64::consts::TAU / 22_050.0).sin() * 8000.0) as i16;
        w.write_sample(s).unwrap();
        w.write_sample(s).unwrap();
    }
    w.finalize().unwrap();
    let album = Album(vec![
        (gapless("part1.flac"), "flac"),
        (wav.into_inner(), "wav"),
    ]);
    let (stats, got) = play_to_wav(album);
    assert_eq!(
        (stats.sample_rate, stats.channels, stats.tracks),
        (44_100, 1, 2)
    );
    // 1.5 s + 1.0 s at 44.1 kHz, give or take the resampler's edges.
    let secs = got.len() as f64 / 44_100.0;
    assert!((secs - 2.5).abs() < 0.01, "{secs} s");
    // The second track is the 440 Hz tone, not silence.
    let tail = &got[PART + 4410..PART + 4410 + 4410];
    let rms = (tail.iter().map(|s| s * s).sum::<f32>() / tail.len() as f32).sqrt();
    assert!(rms > 0.1, "rms {rms}");
}
