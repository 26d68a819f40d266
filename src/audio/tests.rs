//! Probing, decoding, resampling and parsing tests (playback tests are in `tests_play`).

use std::path::PathBuf;

use super::resample::{StreamResampler, map_channels};
use super::*;

/// A fixture from this crate's tests/fixtures.
pub(super) fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

pub(super) fn fixture(name: &str) -> Vec<u8> {
    let path = fixture_path(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// (file, codec, channels)
pub(super) const FIXTURES: [(&str, &str, u16); 5] = [
    ("tone.wav", "wav", 1),
    ("tone.flac", "flac", 1),
    ("tone.mp3", "mp3", 2),
    ("tone.ogg", "vorbis", 2),
    ("tone.m4a", "aac", 2),
];

pub(super) fn ext(name: &str) -> Option<&str> {
    name.rsplit_once('.').map(|(_, e)| e)
}

#[test]
fn probes_every_fixture() {
    for (name, codec, channels) in FIXTURES {
        let info = probe_bytes(&fixture(name), ext(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(info.codec, codec, "{name}");
        assert_eq!(info.sample_rate, 44100, "{name}");
        assert_eq!(info.channels, channels, "{name}");
        assert!(
            (info.duration_s - 2.0).abs() < 0.1,
            "{name}: duration {}",
            info.duration_s
        );
        // Content decides, not the hint.
        let unhinted = probe_bytes(&fixture(name), None).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(unhinted.codec, codec);
        let from_file = probe_file(&fixture_path(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(from_file, info);
    }
}

#[test]
fn probes_the_demo_track() {
    let demo = fixture_path("../../assets/demo.ogg");
    let info = probe_file(&demo).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (info.codec.as_str(), info.sample_rate, info.channels),
        ("vorbis", 44_100, 2)
    );
    assert!((info.duration_s - 20.0).abs() < 0.5, "{info:?}");
}

/// tone.wav (8-bit mono, canonical header) claiming `rate` samples per second.
pub(super) fn wav_claiming_rate(rate: u32) -> Vec<u8> {
    let mut wav = fixture("tone.wav");
    assert_eq!(&wav[12..16], b"fmt ");
    wav[24..28].copy_from_slice(&rate.to_le_bytes());
    wav[28..32].copy_from_slice(&rate.to_le_bytes());
    wav
}

#[test]
fn refuses_a_wav_claiming_an_absurd_sample_rate() {
    let err = probe_bytes(&wav_claiming_rate(u32::MAX - 4), Some("wav"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("out of range"), "{err}");
    let err = probe_bytes(&wav_claiming_rate(1), Some("wav"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("out of range"), "{err}");
    let info = probe_bytes(&wav_claiming_rate(192_000), Some("wav")).unwrap();
    assert_eq!(info.sample_rate, 192_000);
}

/// tone.flac with `count` picture blocks of `bytes` each after its STREAMINFO.
pub(super) fn flac_with_pictures(count: usize, bytes: usize) -> Vec<u8> {
    let flac = fixture("tone.flac");
    assert_eq!(&flac[..4], b"fLaC");
    assert_eq!(flac[4] & 0x7f, 0, "STREAMINFO first");
    let streaminfo_end = 8 + usize::from(flac[7]);
    let mime = b"image/png";
    let mut body = Vec::new();
    body.extend_from_slice(&3u32.to_be_bytes());
    body.extend_from_slice(&(mime.len() as u32).to_be_bytes());
    body.extend_from_slice(mime);
    body.extend_from_slice(&0u32.to_be_bytes());
    for v in [1u32, 1, 24, 0] {
        body.extend_from_slice(&v.to_be_bytes());
    }
    let data_len = bytes - body.len() - 4;
    body.extend_from_slice(&(data_len as u32).to_be_bytes());
    body.resize(bytes, 0);
    let mut out = flac[..streaminfo_end].to_vec();
    for _ in 0..count {
        out.push(6);
        out.extend_from_slice(&(bytes as u32).to_be_bytes()[1..]);
        out.extend_from_slice(&body);
    }
    out.extend_from_slice(&flac[streaminfo_end..]);
    out
}

#[test]
fn refuses_a_file_with_more_tags_and_pictures_than_the_probe_reads() {
    // symphonia keeps every picture it reads: 40 blocks of 16 MiB held 660 MB while playing.
    let err = probe_bytes(&flac_with_pictures(5, (16 << 20) - 1), Some("flac"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("more than 64 MiB of tags and pictures"),
        "{err}"
    );
    let info = probe_bytes(&flac_with_pictures(2, 8 << 20), Some("flac")).unwrap();
    assert_eq!(info.codec, "flac");
}

#[test]
fn a_flac_damaged_by_megabytes_of_garbage_plays_on_past_it() {
    // The per-packet read bound leaves room to scan to the next frame.
    let flac = fixture("tone.flac");
    let mut at = 4;
    loop {
        let last = flac[at] & 0x80 != 0;
        at += 4
            + usize::from(u16::from_be_bytes([flac[at + 2], flac[at + 3]]))
            + (usize::from(flac[at + 1]) << 16);
        if last {
            break;
        }
    }
    let middle = at + (flac.len() - at) / 2;
    let sync = middle
        + flac[middle..]
            .windows(2)
            .position(|w| w == [0xff, 0xf8])
            .unwrap();
    let mut damaged = flac[..sync].to_vec();
    damaged.extend((0..20u32 << 20).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8));
    damaged.extend_from_slice(&flac[sync..]);
    let (_, _, whole) = decode_all(&flac, Some("flac")).unwrap();
    let (_, _, got) = decode_all(&damaged, Some("flac")).unwrap();
    assert!(
        got.len() > whole.len() * 9 / 10,
        "{} of {}",
        got.len(),
        whole.len()
    );
}

#[test]
fn refuses_empty_text_and_random_bytes() {
    let err = probe_bytes(&[], Some("mp3")).unwrap_err().to_string();
    assert_eq!(err, "file is empty");
    let err = probe_bytes(&fixture("not-audio.txt"), Some("txt"))
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("not a decodable audio file ("), "{err}");
    let err = probe_bytes(&fixture("not-audio.txt"), Some("mp3"))
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("not a decodable audio file ("), "{err}");
    let err = probe_file(&fixture_path("not-audio.txt"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("not-audio.txt: not a decodable audio file"),
        "{err}"
    );
    let err = probe_file(&fixture_path("does-not-exist.mp3"))
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("cannot read"), "{err}");

    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for size in [1usize, 16, 1000, 4096, 65_536, 300_000] {
        for hint in [None, Some("mp3"), Some("aac"), Some("wav")] {
            let bytes: Vec<u8> = (0..size)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    (seed >> 24) as u8
                })
                .collect();
            let res = probe_bytes(&bytes, hint);
            assert!(
                res.is_err(),
                "random {size} bytes ({hint:?}) accepted: {res:?}"
            );
            assert!(
                decode_all(&bytes, hint).is_err(),
                "random {size} bytes ({hint:?}) decoded"
            );
        }
    }
}

#[test]
fn an_mp4_with_its_index_at_the_end_probes_like_one_with_it_in_front() {
    let end = probe_bytes(&fixture("tone-moov-at-end.m4a"), Some("m4a")).unwrap();
    let front = probe_bytes(&fixture("tone.m4a"), Some("m4a")).unwrap();
    assert_eq!(end, front);
    let from_file = probe_file(&fixture_path("tone-moov-at-end.m4a")).unwrap();
    assert_eq!(from_file, front);
    // The push's one-pass hash still sees every byte, in order.
    let mut seen = Vec::new();
    super::probe::scan_file(&fixture_path("tone-moov-at-end.m4a"), |b| {
        seen.extend_from_slice(b)
    })
    .unwrap();
    assert_eq!(seen, fixture("tone-moov-at-end.m4a"));
}

#[test]
fn refuses_a_truncated_header() {
    for (name, _, _) in FIXTURES {
        let data = fixture(name);
        let res = probe_bytes(&data[..12.min(data.len())], ext(name));
        assert!(res.is_err(), "{name}: 12 bytes accepted: {res:?}");
    }
}

#[test]
fn decode_all_gives_the_expected_frame_count() {
    for (name, _, channels) in FIXTURES {
        let (rate, ch, pcm) =
            decode_all(&fixture(name), ext(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(rate, 44100, "{name}");
        assert_eq!(ch, channels, "{name}");
        assert_eq!(pcm.len() % usize::from(ch), 0);
        let frames = pcm.len() / usize::from(ch);
        assert!(
            (frames as i64 - 88_200).abs() < 3_000,
            "{name}: {frames} frames"
        );
        let peak = pcm.iter().fold(0f32, |m, s| m.max(s.abs()));
        assert!(peak > 0.05 && peak <= 1.0, "{name}: peak {peak}");
    }
    assert!(decode_all(&[], None).is_err());
}

#[test]
fn maps_channels() {
    let mut out = Vec::new();
    map_channels(&[0.1, 0.2], 1, 2, &mut out);
    assert_eq!(out, [0.1, 0.1, 0.2, 0.2]);
    map_channels(&[0.2, 0.4, 0.6, 0.8], 2, 1, &mut out);
    assert!((out[0] - 0.3).abs() < 1e-6 && (out[1] - 0.7).abs() < 1e-6);
    map_channels(&[1.0, 2.0], 2, 4, &mut out);
    assert_eq!(out, [1.0, 2.0, 0.0, 0.0]);
}

#[test]
fn resampler_keeps_length_and_pitch() {
    let (in_rate, out_rate) = (44_100u32, 48_000u32);
    let sine: Vec<f32> = (0..in_rate)
        .map(|i| (i as f32 * 440.0 * std::f32::consts::TAU / in_rate as f32).sin() * 0.5)
        .collect();
    let mut r = StreamResampler::new(in_rate, out_rate, 1).unwrap();
    let mut out = Vec::new();
    // Odd-sized pieces, as packets come.
    for piece in sine.chunks(1153) {
        out.extend_from_slice(r.process(piece).unwrap());
    }
    out.extend_from_slice(r.flush().unwrap());
    assert_eq!(out.len(), out_rate as usize);
    let crossings = out.windows(2).filter(|w| w[0] < 0.0 && w[1] >= 0.0).count();
    assert!(
        (435..=445).contains(&crossings),
        "{crossings} rising zero crossings"
    );
    let peak = out[1000..47_000].iter().fold(0f32, |m, s| m.max(s.abs()));
    assert!((peak - 0.5).abs() < 0.05, "peak {peak}");
}

#[test]
fn parses_output_kinds() {
    assert_eq!("device".parse::<OutputKind>().unwrap(), OutputKind::Device);
    assert_eq!("null".parse::<OutputKind>().unwrap(), OutputKind::Null);
    assert_eq!(
        "wav:/tmp/x y.wav".parse::<OutputKind>().unwrap(),
        OutputKind::Wav("/tmp/x y.wav".into())
    );
    assert!("wav:".parse::<OutputKind>().is_err());
    assert!("speaker".parse::<OutputKind>().is_err());
    assert_eq!(OutputKind::Wav("a.wav".into()).to_string(), "wav:a.wav");
}

#[test]
fn control_is_shared_between_clones() {
    let c = PlaybackControl::default();
    let d = c.clone();
    assert!(!d.is_paused());
    c.pause();
    assert!(d.is_paused());
    c.resume();
    assert!(!d.is_paused());
    c.set_rate(48_000);
    c.begin_track(0, 3.0, 0.0, 0);
    c.set_progress(24_000, 0.5);
    let s = d.status();
    assert_eq!(
        (s.elapsed_s, s.duration_s, s.buffer_fill, s.sample_rate),
        (0.5, 3.0, 0.5, 48_000)
    );
    d.stop();
    assert!(c.is_stopped());
}

/// Duration of what `decode_all` yields, in seconds.
fn decoded_seconds(data: &[u8], hint: Option<&str>) -> f64 {
    let (rate, ch, pcm) = decode_all(data, hint).unwrap_or_else(|e| panic!("{e}"));
    (pcm.len() / usize::from(ch)) as f64 / f64::from(rate)
}

#[test]
fn duration_is_what_the_packets_hold_not_what_a_header_claims() {
    for (name, _, _) in FIXTURES {
        let data = fixture(name);
        let info = probe_bytes(&data, ext(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        let decoded = decoded_seconds(&data, ext(name));
        // Decoders emit delay and padding frames that the packet durations leave out.
        assert!(
            (info.duration_s - decoded).abs() < 0.06,
            "{name}: {} s listed, {decoded} s decoded",
            info.duration_s
        );
        // Cut in half, the header still claims 2 s; the listing must say about 1 s.
        let half = &data[..data.len() / 2];
        if let Ok(cut) = probe_bytes(half, ext(name)) {
            assert!(
                (0.6..1.4).contains(&cut.duration_s),
                "{name} cut in half listed as {} s",
                cut.duration_s
            );
        }
    }
    // A 100-byte WAV whose header claims 2 s holds 28 frames (one packet at most is counted
    // whole).
    let wav = fixture("tone.wav");
    let tiny = probe_bytes(&wav[..100], Some("wav")).unwrap();
    assert!(
        tiny.duration_s < 0.05,
        "100-byte wav: {} s",
        tiny.duration_s
    );
    // A 1000-byte mp3 holds two or three frames.
    let mp3 = fixture("tone.mp3");
    if let Ok(cut) = probe_bytes(&mp3[..1000], Some("mp3")) {
        assert!(cut.duration_s < 0.1, "1000-byte mp3: {} s", cut.duration_s);
    }
}

#[test]
fn a_header_claiming_hours_does_not_change_the_duration() {
    // The RIFF and data chunk sizes say ~6 hours of audio; the file holds 2 s.
    let mut wav = fixture("tone.wav");
    let data_at = wav.windows(4).position(|w| w == b"data").unwrap();
    wav[data_at + 4..data_at + 8].copy_from_slice(&0x7f00_0000u32.to_le_bytes());
    wav[4..8].copy_from_slice(&0x7fff_0000u32.to_le_bytes());
    let info = probe_bytes(&wav, Some("wav")).unwrap();
    assert!(
        (info.duration_s - 2.0).abs() < 0.03,
        "{} s",
        info.duration_s
    );
}

#[test]
fn scan_file_observes_every_byte_in_order() {
    for (name, _, _) in FIXTURES {
        let mut seen = Vec::new();
        let info = super::probe::scan_file(&fixture_path(name), |b| seen.extend_from_slice(b))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(seen, fixture(name), "{name}");
        assert_eq!(info, probe_bytes(&fixture(name), ext(name)).unwrap());
    }
    // A refusal stops reading where the probe stopped: not the whole file.
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.mp3");
    std::fs::write(&junk, vec![0u8; 64 << 20]).unwrap();
    let mut seen = 0usize;
    let err = super::probe::scan_file(&junk, |b| seen += b.len()).unwrap_err();
    assert!(
        err.to_string().contains("not a decodable audio file"),
        "{err}"
    );
    assert!(seen < 16 << 20, "read {seen} bytes of a 64 MiB refusal");
}
