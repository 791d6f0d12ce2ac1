"""Held-out task variants: new compositions of objects and goals the built-in tasks already use,
for measuring how a policy trained on built-in tasks generalizes (GravMAD's novel-task setting,
docs/gravmad.md). Importing this package registers them (``roboforge/<name>-v0``); they are not
built-in (``envs.is_builtin`` is false), so ``env=builtin`` and the benches over built-in tasks
never include them.

=============================  ====================================  ================================
held-out task                  objects from                          goal from
=============================  ====================================  ================================
``heldout_cylinder_in_zone``   stack_cylinder, place_in_bowl         place_in_zone (InZone)
``heldout_block_in_bowl``      stack_blocks, place_in_zone           place_in_bowl (InZone a bowl)
``heldout_stack_distractor``   stack_blocks + a third block          stack_blocks (On), new layout
=============================  ====================================  ================================
"""
from envs.heldout import tasks as _tasks  # noqa: F401  (registers them)

HELDOUT_TASKS = ("heldout_cylinder_in_zone", "heldout_block_in_bowl", "heldout_stack_distractor")
