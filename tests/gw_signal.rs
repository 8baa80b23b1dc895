//! aframe's signal processing against ml4gw's own outputs (`$WAVESSM_GOLDEN_DIR/gw`, see the
//! golden README there): Welch PSD, whitening, projection onto detectors, SNR, and the
//! shifted-Pearson autoencoder score. Every size comes from the files.

mod common;

use common::{Array, Golden};
use wavessm::data::gw::project::{Detector, Sky, antenna_response, delay_samples, observed_strain};
use wavessm::data::gw::psd::{Average, median_bias, welch};
use wavessm::data::gw::snr::{ifo_snr, network_snr, reweight};
use wavessm::data::gw::whiten::{interp_linear, truncate_psd, whiten};
use wavessm::task::shifted_pearson::{autoencoder_score, shifted_pearson};

fn golden(name: &str) -> Golden {
    common::load(&common::golden_dir().join("gw").join(format!("{name}.json")))
}

fn cfg(g: &Golden, k: &str) -> f64 {
    g.config.get(k).and_then(|v| v.as_f64()).unwrap_or_else(|| panic!("{}: config `{k}`", g.name))
}

/// The rows of an array over its last axis.
fn rows(a: &Array) -> Vec<Vec<f64>> {
    a.data.chunks(*a.shape.last().unwrap()).map(<[f64]>::to_vec).collect()
}

#[test]
fn welch_psd_matches_ml4gw() {
    let g = golden("welch_psd");
    let (fs, nper, nstride) = (cfg(&g, "sample_rate"), g.cfg_usize("nperseg"), g.cfg_usize("nstride"));
    for (key, avg, fast) in [
        ("psd_mean", Average::Mean, false),
        ("psd_median", Average::Median, false),
        ("psd_mean_fast", Average::Mean, true),
        ("psd_median_fast", Average::Median, true),
    ] {
        let got: Vec<f64> =
            rows(g.input("x")).iter().flat_map(|x| welch(x, fs, nper, nstride, avg, fast).unwrap()).collect();
        g.check(key, &got, g.output(key));
    }
    g.check("median_bias", &[median_bias(g.cfg_usize("num_segments"))], g.output("median_bias"));
}

#[test]
fn whitening_matches_ml4gw() {
    let g = golden("whiten");
    let (fs, fd, hp) = (cfg(&g, "sample_rate"), cfg(&g, "fduration"), Some(cfg(&g, "highpass")));
    let nper = (cfg(&g, "fftlength") * fs) as usize;
    let psd: Vec<f64> = rows(g.input("background"))
        .iter()
        .flat_map(|b| welch(b, fs, nper, nper / 2, Average::Median, true).unwrap())
        .collect();
    g.check("psd", &psd, g.output("psd"));
    let pad = (fd * fs / 2.0) as usize;
    let truncated: Vec<f64> = rows(g.output("psd")).iter().flat_map(|p| truncate_psd(p, fs, pad, hp)).collect();
    g.check("psd_truncated", &truncated, g.output("psd_truncated"));
    let (x, psd, coarse) = (rows(g.input("X")), rows(g.output("psd")), rows(g.input("psd_coarse")));
    let run = |psd: &[Vec<f64>], hp: Option<f64>, crop: bool| -> Vec<f64> {
        x.iter().zip(psd).flat_map(|(x, p)| whiten(x, p, fs, fd, hp, crop)).collect()
    };
    g.check("whitened", &run(&psd, hp, true), g.output("whitened"));
    g.check("whitened_uncropped", &run(&psd, hp, false), g.output("whitened_uncropped"));
    g.check("whitened_nohighpass", &run(&psd, None, true), g.output("whitened_nohighpass"));
    g.check("whitened_interp", &run(&coarse, hp, true), g.output("whitened_interp"));
    let n_f = g.input("X").shape.last().unwrap() / 2 + 1;
    let interp: Vec<f64> = coarse.iter().flat_map(|p| interp_linear(p, n_f)).collect();
    g.check("psd_interp", &interp, g.output("psd_interp"));
}

#[test]
fn whitened_noise_is_white_and_unit_scale() {
    // The golden's own background: whitening it with its own PSD flattens the spectrum.
    let g = golden("whiten");
    let fs = cfg(&g, "sample_rate");
    let nper = (cfg(&g, "fftlength") * fs) as usize;
    for b in rows(g.input("background")) {
        let psd = welch(&b, fs, nper, nper / 2, Average::Median, true).unwrap();
        let w = whiten(&b, &psd, fs, cfg(&g, "fduration"), Some(cfg(&g, "highpass")), true);
        let var = w.iter().map(|v| v * v).sum::<f64>() / w.len() as f64;
        assert!((0.5..2.0).contains(&var), "whitened variance {var}");
    }
}

/// The sky positions of the projection file.
fn skies(g: &Golden) -> Vec<Sky> {
    let (dec, psi, phi) = (&g.input("dec").data, &g.input("psi").data, &g.input("phi").data);
    (0..dec.len()).map(|b| Sky { dec: dec[b], psi: psi[b], phi: phi[b] }).collect()
}

/// The file's detectors, stored as ml4gw used them.
fn detectors(g: &Golden) -> Vec<Detector> {
    let (t, v) = (&g.input("detector_tensors").data, &g.input("detector_vertices").data);
    (0..v.len() / 3)
        .map(|i| Detector {
            vertex: [v[3 * i], v[3 * i + 1], v[3 * i + 2]],
            tensor: std::array::from_fn(|j| std::array::from_fn(|k| t[9 * i + 3 * j + k])),
        })
        .collect()
}

#[test]
fn projection_matches_ml4gw() {
    let g = golden("projection");
    let fs = cfg(&g, "sample_rate");
    let (skies, dets) = (skies(&g), detectors(&g));
    let (hc, hp) = (rows(g.input("hc")), rows(g.input("hp")));
    let (mut resp, mut delay, mut shift, mut projected) = (vec![], vec![], vec![], vec![]);
    for (b, sky) in skies.iter().enumerate() {
        let r: Vec<(f64, f64)> = dets.iter().map(|d| antenna_response(*sky, d)).collect();
        resp.extend(r.iter().map(|r| r.0)); // [batch, pol, ifo]: cross first
        resp.extend(r.iter().map(|r| r.1));
        for d in &dets {
            let s = delay_samples(*sky, d, fs);
            delay.push(s);
            shift.push(s.trunc());
            projected.extend(observed_strain(&hc[b], &hp[b], *sky, d, fs));
        }
    }
    g.check("antenna_responses", &resp, g.output("antenna_responses"));
    g.check("delay_samples", &delay, g.output("delay_samples"));
    g.check("shift_samples", &shift, g.output("shift_samples"));
    g.check("projected", &projected, g.output("projected"));
}

#[test]
fn built_in_detectors_are_the_ones_ml4gw_uses() {
    // Ours come from LALSuite's arm vectors in f64; ml4gw stores float32 copies.
    let g = golden("projection");
    let names: Vec<String> = serde_json::from_value(g.config["ifos"].clone()).unwrap();
    for (name, file) in names.iter().zip(detectors(&g)) {
        let ours = Detector::named(name).unwrap_or_else(|| panic!("no built-in detector {name}"));
        for i in 0..3 {
            assert!((ours.vertex[i] - file.vertex[i]).abs() <= 1e-6 * file.vertex[i].abs().max(1.0), "{name} vertex");
            for j in 0..3 {
                assert!((ours.tensor[i][j] - file.tensor[i][j]).abs() < 1e-7, "{name} tensor[{i}][{j}]");
            }
        }
    }
}

#[test]
fn snr_matches_ml4gw() {
    let g = golden("snr");
    let (fs, hp, lp) = (cfg(&g, "sample_rate"), Some(cfg(&g, "highpass")), Some(cfg(&g, "band_lowpass")));
    let r = g.input("responses");
    let n_ifo = r.shape[1];
    let batches: Vec<Vec<Vec<f64>>> = rows(r).chunks(n_ifo).map(<[_]>::to_vec).collect();
    let (psd, coarse) = (rows(g.input("psd")), rows(g.input("psd_coarse")));
    let ifo: Vec<f64> =
        batches.iter().flat_map(|h| h.iter().zip(&psd).map(|(h, p)| ifo_snr(h, p, fs, hp, None))).collect();
    g.check("ifo_snr", &ifo, g.output("ifo_snr"));
    let net =
        |psd: &[Vec<f64>], hp, lp| -> Vec<f64> { batches.iter().map(|h| network_snr(h, psd, fs, hp, lp)).collect() };
    let network = net(&psd, hp, None);
    g.check("network_snr", &network, g.output("network_snr"));
    g.check("network_snr_nohighpass", &net(&psd, None, None), g.output("network_snr_nohighpass"));
    g.check("network_snr_band", &net(&psd, hp, lp), g.output("network_snr_band"));
    g.check("network_snr_interp", &net(&coarse, hp, None), g.output("network_snr_interp"));
    let mut rescaled = batches.clone();
    for ((h, cur), target) in rescaled.iter_mut().zip(&network).zip(&g.input("target_snr").data) {
        reweight(h, *cur, *target);
        let after = network_snr(h, &psd, fs, hp, None);
        assert!((after - target).abs() < 1e-9 * target, "rescaled to {after}, target {target}");
    }
    g.check("rescaled", &rescaled.concat().concat(), g.output("rescaled"));
}

#[test]
fn shifted_pearson_matches_ml4gw() {
    let g = golden("shifted_pearson");
    let s = g.cfg_usize("max_shift");
    let (x, x_hat) = (g.input("X"), g.input("X_hat"));
    let c = x.shape[1];
    let x: Vec<Vec<Vec<f64>>> = rows(x).chunks(c).map(<[_]>::to_vec).collect();
    let x_hat: Vec<Vec<Vec<f64>>> = rows(x_hat).chunks(c).map(<[_]>::to_vec).collect();
    // corr [2S+1, B, C]: detector i of X against reconstruction C−1−i.
    let per: Vec<Vec<Vec<f64>>> =
        x.iter().zip(&x_hat).map(|(x, h)| (0..c).map(|i| shifted_pearson(&x[i], &h[c - 1 - i], s)).collect()).collect();
    let corr: Vec<f64> =
        (0..=2 * s).flat_map(|j| per.iter().flat_map(move |b| b.iter().map(move |ch| ch[j]))).collect();
    g.check("corr", &corr, g.output("corr"));
    let max: Vec<f64> =
        per.iter().flat_map(|b| b.iter().map(|ch| ch.iter().copied().fold(f64::MIN, f64::max))).collect();
    g.check("corr_max", &max, g.output("corr_max"));
    let score: Vec<f64> = x.iter().zip(&x_hat).map(|(x, h)| autoencoder_score(x, h, s)).collect();
    g.check("score", &score, g.output("score"));
    g.check("loss", &score.iter().map(|v| -v).collect::<Vec<_>>(), g.output("loss"));
}

#[test]
fn taylorf2_matches_ml4gw() {
    use wavessm::data::gw::taylorf2::{Binary, polarisations};
    let g = golden("taylorf2_fd");
    let unit = cfg(&g, "strain_unit");
    let p = |k: &str| g.input(k).data.clone();
    let (mc, q, c1, c2, d, ph, inc) =
        (p("chirp_mass"), p("mass_ratio"), p("chi1"), p("chi2"), p("distance"), p("phic"), p("inclination"));
    let f = &g.input("f").data;
    let (mut m1s, mut m2s) = (vec![], vec![]);
    let (mut hc_re, mut hc_im, mut hp_re, mut hp_im) = (vec![], vec![], vec![], vec![]);
    for b in 0..mc.len() {
        let binary = Binary {
            chirp_mass: mc[b],
            mass_ratio: q[b],
            chi1: c1[b],
            chi2: c2[b],
            distance: d[b],
            phic: ph[b],
            inclination: inc[b],
        };
        let (m1, m2) = binary.masses();
        m1s.push(m1);
        m2s.push(m2);
        let (hc, hp) = polarisations(&binary, f, cfg(&g, "f_ref"), unit);
        hc_re.extend(hc.iter().map(|c| c.re));
        hc_im.extend(hc.iter().map(|c| c.im));
        hp_re.extend(hp.iter().map(|c| c.re));
        hp_im.extend(hp.iter().map(|c| c.im));
    }
    g.check("mass_1", &m1s, g.output("mass_1"));
    g.check("mass_2", &m2s, g.output("mass_2"));
    g.check("hc_re", &hc_re, g.output("hc_re"));
    g.check("hc_im", &hc_im, g.output("hc_im"));
    g.check("hp_re", &hp_re, g.output("hp_re"));
    g.check("hp_im", &hp_im, g.output("hp_im"));
}
