"""Reshaping a corpus: neighbour graphs, DDCUp (upsample), DRCDown (downsample), target size."""
