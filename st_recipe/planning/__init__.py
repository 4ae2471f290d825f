"""From a budget to a Recipe: the planner, the one recipe builder, provenance, scaling-law fits and the zoo."""
