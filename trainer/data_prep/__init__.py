"""Offline data preparation for the packaged default model (see `build_default_data`).

Real clips (esc50-mini, clotho-mini) with captions, plus speech, music and test signals
generated with espeak-ng, fluidsynth and sox, plus mixtures with joined captions; held-out
splits are committed in `splits/`.
"""
