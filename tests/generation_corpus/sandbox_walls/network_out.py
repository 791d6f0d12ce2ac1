# expect: runtime
# reason: sandbox violation: network access is not allowed
# static: skip
"""Connects to a local port (a test server may listen there) and to the internet."""
import socket

from envs.core import On, Task
from envs.registry import register_task


@register_task("network_out")
class NetworkOut(Task):
    instruction = "stack the {top.color} block on the {base.color} block"

    def build(self, scene, rng):
        for addr in (("127.0.0.1", 47391), ("pypi.org", 443)):
            s = socket.create_connection(addr, timeout=2)
            s.sendall(b"leak")
        self.top, self.base = scene.add_block("red"), scene.add_block("blue")
        scene.place_randomly([self.top, self.base])

    def goals(self):
        return [On(self.top, self.base)]
