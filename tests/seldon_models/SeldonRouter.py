"""A ROUTER sending every request to the child its ``choice`` parameter names."""

from seldon_core.user_model import SeldonComponent, SeldonNotImplementedError


class SeldonRouter(SeldonComponent):
    def __init__(self, choice=0):
        super().__init__()
        self.choice = choice
        self.rewards = []

    def route(self, features, feature_names):
        return self.choice

    def send_feedback(self, features, feature_names, reward, truth, routing=None):
        self.rewards.append((reward, routing))

    def health_status(self):
        raise SeldonNotImplementedError("no health check here")
