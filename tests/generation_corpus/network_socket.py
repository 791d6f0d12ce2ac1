# expect: static
# reason: import of 'socket' is not allowed
"""Phones home."""
import socket

from envs.core import On, Task
from envs.registry import register_task


@register_task("network_socket")
class NetworkSocket(Task):
    instruction = "stack the {top.color} block on the {base.color} block"

    def build(self, scene, rng):
        socket.create_connection(("example.com", 80), timeout=2).sendall(b"GET / HTTP/1.0\r\n\r\n")
        self.top, self.base = scene.add_block("red"), scene.add_block("blue")
        scene.place_randomly([self.top, self.base])

    def goals(self):
        return [On(self.top, self.base)]
