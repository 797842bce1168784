"""Mobile export (issue 8): the CLI end to end on a tiny random-weights model, TFLite parity with
the JAX path on rendered fixture clips through the app's token and frame loops, the Core ML
packages' I/O contract, the manifest's recommended decoder, vocab.json, and the numpy grammar
against harmonynet_jax.grammar.

Skips only when the export extra (TensorFlow, LiteRT, coremltools, stablehlo-coreml) is missing.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

pytest.importorskip("tensorflow")
pytest.importorskip("ai_edge_litert")
pytest.importorskip("coremltools")
pytest.importorskip("stablehlo_coreml")

import equinox as eqx  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from export import coreml, decode_loop, host_grammar, parity, pipeline, tflite  # noqa: E402
from export.__main__ import main  # noqa: E402
from export.contract import SIGNATURE_NAMES, Contract, Decoding, vocab_json  # noqa: E402
from export.pipeline import recommended_decoding, tflite_name, transcribes_alike  # noqa: E402
from export.stablehlo import ExportFunctions, float32_model  # noqa: E402
from harmonynet_jax import grammar  # noqa: E402
from harmonynet_jax.config import ExportConfig, InferenceConfig, ModelConfig  # noqa: E402
from harmonynet_jax.model import HarmonyNet  # noqa: E402
from harmonynet_jax.tokens import VOCAB  # noqa: E402
from harmonynet_jax.weights import load_weights, save_weights  # noqa: E402

TINY = ModelConfig.preset("tiny")
GOLDEN = json.loads((Path(__file__).parent / "data" / "tokens_golden.json").read_text())


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> tuple[Path, HarmonyNet]:
    """`python -m export` on a float16 weights file (as save_weights writes), parity on 1 clip."""
    root = tmp_path_factory.mktemp("export")
    weights = save_weights(root / "tiny.eqx", HarmonyNet(TINY, key=jax.random.key(0)))
    out = root / "out"
    code = main(["--checkpoint", str(weights), "--out", str(out),
                 "--parity-clips", "1", "--parity-seconds", "2"])
    assert code == 0
    return out, load_weights(weights)


@pytest.fixture(scope="module")
def contract() -> Contract:
    return Contract.from_config(TINY)


def test_cli_writes_every_artifact(exported):
    out, _ = exported
    manifest = json.loads((out / "manifest.json").read_text())
    for name in manifest["files"].values():
        assert (out / name).exists(), name
    coreml = {f"coreml_{name}" for name in SIGNATURE_NAMES}
    assert {"vocab", "saved_model", "tflite_fp32", *coreml} <= set(manifest["files"])
    assert manifest["contract"] == json.loads(json.dumps(Contract.from_config(TINY).to_json()))
    assert set(manifest["contract"]["signatures"]) == set(SIGNATURE_NAMES)
    # No recommendation in the weights header: InferenceConfig's defaults.
    decoding = Decoding(**manifest["decoding"])
    assert decoding == Decoding.of(HarmonyNet(TINY, key=jax.random.key(0)), InferenceConfig())
    assert decoding.decoder == "tokens" and decoding.margin_frames > 0
    report = manifest["parity"]
    assert set(report) == {"fp32", "fp16", "int8"}
    fp32 = report["fp32"]
    assert fp32["passed"] and fp32["tokens_identical"] and fp32["clips"][0]["tokens"] > 0
    assert fp32["frame_probs_within_tolerance"] and fp32["frame_notes_identical"]
    assert fp32["frame_probs_max_abs_diff"] <= fp32["frame_probs_tolerance"] == 1e-4
    assert fp32["clips"][0]["frame_notes"] > 0
    # A reduced-precision file ships only if it transcribes exactly like the JAX model (with
    # the recommended decoder: tokens here).
    for variant, r in report.items():
        identical = r["tokens_identical"] and r["notes_identical"]
        assert r["shipped"] == (identical or variant == "fp32"), variant
        assert r["frame_probs_tolerance"] == parity.FRAME_TOLERANCE[variant]
        assert (out / tflite_name(variant)).exists() == r["shipped"], variant
    sizes = manifest["sizes_bytes"]
    if "tflite_fp16" in sizes:
        assert sizes["tflite_fp16"] < 0.6 * sizes["tflite_fp32"]


def test_exported_model_is_the_float16_weights_file(exported):
    _, model = exported
    leaves = jax.tree.leaves(model)
    assert all(x.dtype == jnp.float32 for x in leaves if jnp.issubdtype(x.dtype, jnp.floating))
    # The file holds float16, so the loaded weights are exactly float16 numbers.
    w = np.asarray(model.decoder.head.weight)
    np.testing.assert_array_equal(w, w.astype(np.float16).astype(np.float32))


def test_tflite_signatures_follow_the_contract(exported, contract):
    out, _ = exported
    shipped = sorted(p.name for p in out.glob("*.tflite"))
    assert tflite_name("fp32") in shipped
    for name in shipped:
        got = tflite.TFLiteModel(out / name, contract).signature_io()
        for signature in contract.signatures:
            for kind, specs in (("inputs", signature.inputs), ("outputs", signature.outputs)):
                want = {t.name: (t.shape, t.dtype) for t in specs}
                assert got[signature.name][kind] == want, (name, signature.name, kind)


def test_int8_file_size(tmp_path, exported):
    """Dynamic-range int8 shrinks the fp32 file about 4x (whether or not it ships)."""
    out, _ = exported
    saved = out / "saved_model"
    fp32 = (out / tflite_name("fp32")).stat().st_size
    assert len(tflite.convert(saved, "int8")) < 0.35 * fp32


def test_tflite_fp32_matches_jax_on_fixture_clips(exported, contract):
    """The app's loops over the fp32 file give exactly the JAX tokens and notes, and the
    desktop frame decoder's notes (frame_probs run by the real interpreter)."""
    out, model = exported
    clips = [(p.name, parity.load_clip(p, 2.5)) for p in parity.fixture_clips(3)[1:]]
    candidate = tflite.TFLiteModel(out / tflite_name("fp32"), contract)
    rows = parity.check_clips(model, {"fp32": candidate}, clips)["fp32"]
    for row in rows:
        assert row.encode_max_abs_diff <= 1e-4, row
        assert row.tokens_identical and row.notes_identical, row
        assert row.tokens > 2 * row.segments, row  # more than TIE_END + EOS per segment
        assert row.frame_probs_max_abs_diff <= parity.FRAME_TOLERANCE["fp32"], row
        assert row.frame_notes_identical and row.frame_notes > 0, row


def test_tflite_frame_probs_are_the_desktop_probabilities(exported, contract):
    """frame_probs of each variant file against harmonynet_jax.inference's own frame head
    (sigmoid of all three heads, velocity included), on one encoded segment."""
    from harmonynet_jax.inference import _frame_probs

    out, model = exported
    audio = parity.load_clip(parity.fixture_clips(1)[0], None)[: contract.segment_samples]
    memory = np.asarray(float32_model(model).encode(jnp.asarray(audio)[None]))
    want = {k: np.asarray(v, np.float32) for k, v in _frame_probs(model, memory).items()}
    for path in sorted(out.glob("*.tflite")):
        variant = path.stem.removeprefix("harmonynet_")
        got = tflite.TFLiteModel(path, contract).frame_probs(memory)
        assert set(got) == set(want)
        for key, probs in got.items():
            assert probs.shape == (1, contract.frames, contract.num_pitches)
            assert probs.min() >= 0.0 and probs.max() <= 1.0
            # the desktop path rounds to float16 (5e-4 near 1)
            tolerance = max(parity.FRAME_TOLERANCE[variant], 5e-4)
            assert float(np.abs(probs - want[key]).max()) <= tolerance, (variant, key)


def test_manifest_decoding_follows_the_weights_header(tmp_path):
    """A weights file that recommends the frame decoder (as models/harmonynet.eqx does)
    puts that decoder and its thresholds in the manifest; apps read them from there."""
    model = HarmonyNet(TINY, key=jax.random.key(0))
    info = {"decoder": "frames", "onset_threshold": 0.6, "frame_threshold": 0.3}
    path = save_weights(tmp_path / "tuned.eqx", model, info=info)
    decoding = recommended_decoding(model, path)
    assert (decoding.decoder, decoding.onset_threshold, decoding.frame_threshold) == (
        "frames", 0.6, 0.3)
    assert decoding.frame_margin_s == InferenceConfig().frame_margin_s
    hop = Contract.from_config(TINY).hop_samples
    assert decoding.margin_samples == decoding.margin_frames * hop
    nothing_but_json = ExportConfig(tflite_variants=(), coreml=False, saved_model=False)
    manifest = pipeline.export_model(model, tmp_path / "out", nothing_but_json,
                                     log=lambda *_: None, decoding=decoding)
    written = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["decoding"] == written["decoding"] == decoding.to_json()
    assert recommended_decoding(model, None).decoder == InferenceConfig().decoder
    assert Decoding.of(model, decoding.inference_config()) == decoding


def test_recommended_decoder_decides_what_ships():
    """fp16/int8 ship when the decoder the manifest recommends gives the JAX notes."""
    report = {"tokens_identical": False, "notes_identical": False,
              "frame_notes_identical": True, "frame_probs_within_tolerance": True}
    assert transcribes_alike(report, "frames") and not transcribes_alike(report, "tokens")
    report |= {"tokens_identical": True, "notes_identical": True, "frame_notes_identical": False}
    assert transcribes_alike(report, "tokens") and not transcribes_alike(report, "frames")


def test_cache_slots_after_position_are_ignored(exported, contract):
    """docs/mobile.md promises that only finite contents are needed past `position`: the same
    logits whether the caches start as zeros or as large random values."""
    out, _ = exported
    model = tflite.TFLiteModel(out / tflite_name("fp32"), contract)
    memory = model.encode(parity.load_clip(parity.fixture_clips(1)[0], 1.0))
    rng = np.random.default_rng(0)
    zeros = [np.zeros(contract.cache_shape, np.float32) for _ in range(2)]
    noise = [rng.normal(0, 100, contract.cache_shape).astype(np.float32) for _ in range(2)]
    token = VOCAB.sos
    for i in range(8):
        a, *zeros = model.decode_step(token, memory, *zeros, i)
        b, *noise = model.decode_step(token, memory, *noise, i)
        np.testing.assert_array_equal(a, b)
        token = int(np.argmax(a))


def test_parity_check_detects_another_model(exported, contract):
    """The comparison is not vacuous: other weights through the same loop do not pass."""
    _, model = exported
    other = decode_loop.JaxStepModel(
        ExportFunctions.from_model(HarmonyNet(TINY, key=jax.random.key(1)))
    )
    audio = parity.load_clip(parity.fixture_clips(1)[0], 2.0)
    row = parity.compare(other, parity.jax_reference(model, audio), audio)
    assert row.encode_max_abs_diff > 1e-2
    assert not row.tokens_identical
    assert row.frame_probs_max_abs_diff > 1e-2 and not row.frame_notes_identical


def test_jax_step_loop_matches_batched_greedy_decode(exported):
    """The host loop (numpy grammar, batch 1, cross-attention recomputed) equals
    decoding.greedy_decode on the same weights, independent of any converter."""
    _, model = exported
    audio = parity.load_clip(parity.fixture_clips(6)[5], 2.0)
    row = parity.compare(
        decode_loop.JaxStepModel(ExportFunctions.from_model(model)),
        parity.jax_reference(model, audio),
        audio,
    )
    assert row.tokens_identical and row.notes_identical and row.encode_max_abs_diff < 1e-5
    assert row.frame_notes_identical and row.frame_probs_max_abs_diff < 1e-5


@pytest.mark.parametrize("name", SIGNATURE_NAMES)
def test_coreml_package_follows_the_contract(exported, contract, name):
    out, _ = exported
    spec = coreml.load_spec(out / f"{name}.mlpackage")
    signature = contract.signature(name)
    io = coreml.spec_io(spec)
    assert io["inputs"] == {t.name: (t.shape, t.dtype) for t in signature.inputs}
    assert io["outputs"] == {t.name: (t.shape, t.dtype) for t in signature.outputs}
    assert [f.name for f in spec.description.input] == [t.name for t in signature.inputs]
    assert spec.WhichOneof("Type") == "mlProgram"
    assert spec.specificationVersion >= 9  # iOS 18 / macOS 15
    meta = dict(spec.description.metadata.userDefined)
    assert meta["harmonynet.signature"] == name
    assert meta["harmonynet.compute_precision"] == "float32"
    assert json.loads(meta["harmonynet.contract"]) == contract.to_json()["sizes"]
    docs = {f.name: f.shortDescription for f in spec.description.output}
    assert all(docs.values())


def test_vocab_json_names_every_id(exported):
    out, _ = exported
    vocab = json.loads((out / "vocab.json").read_text())
    assert vocab == json.loads(json.dumps(vocab_json()))
    assert len(vocab["names"]) == vocab["size"] == VOCAB.size
    for i in (VOCAB.pad, VOCAB.sos, VOCAB.eos, VOCAB.time(7), VOCAB.velocity(3), VOCAB.note(60)):
        assert vocab["names"][i] == VOCAB.name(i)
    assert vocab["note_offset"] == VOCAB.note_offset and vocab["min_pitch"] == VOCAB.min_pitch


def test_float32_model_switches_compute_dtype_only():
    config = ModelConfig(d_model=32, num_heads=2, enc_layers=1, dec_layers=1, mlp_ratio=2,
                         max_decode_len=16, segment_samples=3200, compute_dtype="bfloat16")
    model = eqx.filter_eval_shape(HarmonyNet, config, key=jax.random.key(0))
    fp32 = float32_model(model)
    assert fp32.config.compute_dtype == "float32" and fp32.config.dropout == 0.0
    assert all(a is b for a, b in zip(jax.tree.leaves(model), jax.tree.leaves(fp32), strict=True))


def test_segments_tile_and_pad():
    audio = np.arange(1, 2 * 320 + 161, dtype=np.float32)  # 2.5 segments of 320 samples
    segs, steps = decode_loop.segments(audio, 320)
    assert segs.shape == (3, 320)
    np.testing.assert_array_equal(segs.reshape(-1)[: audio.size], audio)
    assert not segs.reshape(-1)[audio.size :].any()
    assert steps.tolist() == [2, 2, 1]  # the last segment holds 160 samples: one 10 ms step


def test_app_loop_notes_equal_the_desktop_transcriber(exported, contract):
    """The fp32 TFLite loop gives the notes of harmonynet_jax.inference (the desktop path)."""
    from harmonynet_jax.inference import run_model

    out, model = exported
    audio = parity.load_clip(parity.fixture_clips(2)[1], 2.5)  # ends mid-segment
    app = decode_loop.transcribe(tflite.TFLiteModel(out / tflite_name("fp32"), contract), audio)
    assert app.notes and (app.notes, app.pedals) == run_model(model, audio)["tokens"]


def test_coreml_float16_keeps_the_front_end_in_float32(exported):
    _, model = exported
    spec = coreml.convert(ExportFunctions.from_model(model), "encode", "float16").get_spec()
    main = spec.mlProgram.functions["main"]
    ops = main.block_specializations[main.opset].operations
    fp32, fp16 = 11, 10  # MIL tensor data types
    dtype = {op.type: op.outputs[0].type.tensorType.dataType for op in ops if op.outputs}
    first_conv = next(op for op in ops if op.type == "conv")
    assert first_conv.outputs[0].type.tensorType.dataType == fp32
    assert dtype["log"] == fp32
    assert dtype["scaled_dot_product_attention"] == fp16
    assert dict(spec.description.metadata.userDefined)["harmonynet.compute_precision"] == "float16"


def _random_walk(canonical: bool, seed: int, batch: int = 16, longest: int = 40) -> int:
    """Walks random legal sequences, comparing the numpy and JAX masks at every position.

    Each row has its own budget (3..longest positions), so budget-forced endings meet every
    kind of state; tokens are drawn by kind first (specials are likely, so pedal and tie
    sections occur), and TIME is often the earliest legal step (so step 0 occurs).
    """
    rng = np.random.default_rng(seed)
    num_steps = rng.integers(1, VOCAB.num_time + 1, batch)
    num_steps[:2] = (VOCAB.num_time, 3)
    lengths = rng.integers(3, longest + 1, batch)
    mask_fn = jax.jit(grammar.legal_mask, static_argnames="canonical")
    advance_fn = jax.jit(grammar.advance)
    state = grammar.init_state(batch, jnp.asarray(num_steps))
    hosts = [host_grammar.HostState(num_steps=int(n)) for n in num_steps]
    kinds = [(0, VOCAB.time_offset), (VOCAB.time_offset, VOCAB.velocity_offset),
             (VOCAB.velocity_offset, VOCAB.note_offset), (VOCAB.note_offset, VOCAB.size)]
    kind_p = np.array([0.4, 0.2, 0.2, 0.2])
    checked = 0
    for i in range(longest):
        remaining = lengths - i
        want = np.asarray(mask_fn(state, jnp.asarray(remaining, jnp.int32), canonical=canonical))
        picks = []
        for row, host in enumerate(hosts):
            got = host_grammar.legal_mask(host, int(remaining[row]), canonical=canonical)
            np.testing.assert_array_equal(got, want[row], err_msg=f"row {row} position {i}")
            assert got.any(), f"row {row}: empty mask at position {i}"
            options = [np.flatnonzero(got[a:b]) + a for a, b in kinds]
            p = np.array([kind_p[k] if o.size else 0.0 for k, o in enumerate(options)])
            kind = rng.choice(len(kinds), p=p / p.sum())
            pool = options[kind]
            early = kind == 1 and rng.random() < 0.6
            token = int(pool[0] if early else rng.choice(pool))
            picks.append(token)
            hosts[row] = host_grammar.advance(host, token)
            checked += 1
        state = advance_fn(state, jnp.asarray(picks, jnp.int32))
    assert all(h.section == grammar.DONE for h in hosts)  # every budget forced EOS in time
    return checked


@pytest.mark.parametrize("canonical", [True, False])
def test_host_grammar_equals_jax_grammar(canonical):
    assert sum(_random_walk(canonical, seed) for seed in range(6)) == 6 * 16 * 40


@pytest.mark.parametrize("canonical", [True, False])
def test_host_grammar_equals_jax_grammar_on_every_short_prefix(canonical):
    """Every legal prefix (up to 5 tokens) over an alphabet that reaches each rule, in a
    segment of 3 steps, under budgets 1..5 and none: the boundary cases random walks miss."""
    v = VOCAB
    alphabet = [v.pad, v.eos, v.tie_end, v.pedal_on, v.pedal_off, *(v.time(t) for t in range(3)),
                *(v.velocity(b) for b in (0, 1, 2)), *(v.note(p) for p in (21, 22, 23))]
    mask_fn = jax.jit(grammar.legal_mask, static_argnames="canonical")
    advance_fn = jax.jit(grammar.advance)
    rows = 512
    state = grammar.init_state(rows, 3)
    hosts = [host_grammar.HostState(num_steps=3)]
    compared = 0
    for depth in range(6):
        for remaining in (1, 2, 3, 4, 5, None):
            budget = None if remaining is None else jnp.int32(remaining)
            want = np.asarray(mask_fn(state, budget, canonical=canonical))
            for row, host in enumerate(hosts):
                got = host_grammar.legal_mask(host, remaining, canonical=canonical)
                np.testing.assert_array_equal(got, want[row], err_msg=f"{host} {remaining}")
                compared += 1
        if depth == 5:
            break
        free = np.asarray(mask_fn(state, None, canonical=canonical))[: len(hosts), alphabet]
        parents, picks = np.nonzero(free)
        tokens = np.asarray(alphabet)[picks]
        assert len(tokens) <= rows
        # One static batch of `rows` (padded with copies of row 0): one compilation in all.
        index = np.zeros(rows, np.int64)
        index[: len(parents)] = parents
        padded = np.full(rows, tokens[0], np.int32)
        padded[: len(tokens)] = tokens
        state = advance_fn(jax.tree.map(lambda x, i=index: x[i], state), jnp.asarray(padded))
        hosts = [host_grammar.advance(hosts[p], t) for p, t in zip(parents, tokens, strict=True)]
    assert compared > 2_000, compared


@pytest.mark.parametrize("canonical", [True, False])
def test_host_grammar_accepts_loader_sequences(canonical):
    for case in GOLDEN["cases"]:
        state = host_grammar.HostState(num_steps=case["steps"])
        for name in case["tokens"]:
            token = VOCAB.token(name)
            assert host_grammar.legal_mask(state, canonical=canonical)[token], (case["name"], name)
            state = host_grammar.advance(state, token)


def test_conv2d_stem_exports_to_tflite_and_core_ml(tmp_path):
    """The 2-D conv stem (strided convs, no pooling) converts with builtin TFLite ops and
    encodes a rendered clip like JAX; Core ML converts its encode program too."""
    config = dataclasses.replace(TINY, stem="conv2d", stem_channels=4)
    functions = ExportFunctions.from_model(HarmonyNet(config, key=jax.random.key(3)))
    saved = tflite.save_saved_model(functions, tmp_path / "saved_model")
    path = tmp_path / "model.tflite"
    path.write_bytes(tflite.convert(saved, "fp32"))
    audio = parity.load_clip(parity.fixture_clips(1)[0], None)[: config.segment_samples]
    got = tflite.TFLiteModel(path, Contract.from_config(config)).encode(audio)
    want = np.asarray(functions.encode(jnp.asarray(audio)[None]))
    assert got.shape == want.shape and float(np.abs(got - want).max()) <= 1e-4
    spec = coreml.convert(functions, "encode").get_spec()
    assert [o.name for o in spec.description.output] == ["memory"]
