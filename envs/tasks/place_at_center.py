"""Move a block to the centre of the table."""
from envs.core import AtPose, Task
from envs.registry import register_task


@register_task("place_at_center")
class PlaceAtCenter(Task):
    instruction = "move the {block.color} block to the centre of the table"

    def build(self, scene, rng):
        self.block = scene.add_block(scene.distinct_colors(1)[0], size=0.04)
        self.mark = scene.add_zone("white", size=0.05, name="centre_mark")
        self.mark.pos[:] = (0.5, 0.0, 0.0005)
        scene.place_randomly([self.block], min_gap=0.06)

    def goals(self):
        return [AtPose(self.block, xy=(0.5, 0.0), tol=0.02)]
