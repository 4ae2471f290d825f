"""What a decoder is, without weights: the catalogue, config.json reading, shapes, structure, LR facts, MODEL args."""
