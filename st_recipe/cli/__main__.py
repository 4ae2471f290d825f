"""``python -m st_recipe.cli``: the same as the ``st-recipe`` command."""

from st_recipe.cli import main

main()
