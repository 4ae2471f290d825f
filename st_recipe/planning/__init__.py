"""From a budget to a Recipe: the planner, the one recipe builder, the typed defaults and scaling-law fits."""
