"""Sort four blocks into the zone of their own colour."""
from envs.core import InZone, Task
from envs.registry import register_task


@register_task("sort_by_color")
class SortByColor(Task):
    instruction = "sort the blocks: {c0} blocks in the {c0} zone, {c1} blocks in the {c1} zone"
    max_episode_steps = 500

    def build(self, scene, rng):
        self.c0, self.c1 = scene.distinct_colors(2)
        self.zones = [scene.add_zone(self.c0, size=(0.1, 0.14), name="zone_a"),
                      scene.add_zone(self.c1, size=(0.1, 0.14), name="zone_b")]
        for zone, y in zip(self.zones, (0.1, -0.1) if rng.random() < 0.5 else (-0.1, 0.1)):
            zone.pos[:] = (0.6, y, 0.0005)  # fixed slots at the far edge; which colour goes where varies
        self.blocks = [scene.add_block(c, size=0.035, name=f"block_{i}")
                       for i, c in enumerate([self.c0, self.c0, self.c1, self.c1])]
        scene.place_randomly(self.blocks, region="near", min_gap=0.015)

    def goals(self):
        slots = [(0, 0.035), (0, -0.035)]  # two blocks side by side in each zone
        return [InZone(b, self.zones[i // 2], margin=0.015, offset=slots[i % 2]) for i, b in enumerate(self.blocks)]
