"""Insert a round peg into a round hole with 3 mm of clearance all round."""
from envs.core import Inserted, Task
from envs.registry import register_task

PEG_RADIUS, CLEARANCE = 0.015, 0.003  # m


@register_task("peg_insertion")
class PegInsertion(Task):
    instruction = "insert the {peg.color} peg into the hole in the {socket.color} block"
    max_episode_steps = 300
    features = frozenset({"socket"})

    def build(self, scene, rng):
        cp, cs = scene.distinct_colors(2)
        self.socket = scene.add_socket(cs, hole=2 * (PEG_RADIUS + CLEARANCE), shape="round", depth=0.03)
        self.peg = scene.add_cylinder(cp, radius=PEG_RADIUS, height=0.07)
        scene.place_randomly([self.socket, self.peg], min_gap=0.04)

    def goals(self):
        return [Inserted(self.peg, self.socket)]
