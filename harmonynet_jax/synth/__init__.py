"""Training data without MAESTRO: render MAESTRO-layout folders from MIDI with FluidSynth.

Music (music21 corpus, harmonised folk tunes, generated textures) -> humanised performance
-> MIDI (mido) -> FluidSynth (Debian piano SoundFonts) -> recording-chain effects -> audio
file, plus the MAESTRO index. Run `python -m harmonynet_jax.synth --out DIR --hours H`.
"""
