"""Settings of the callbacks process (``KEEPER_CALLBACKS_*``; shared names as elsewhere)."""

from __future__ import annotations

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from stream_agents.callbacks.backoff import RetryPolicy
from stream_agents.process import ConsumerSettings, topic_prefix_field


class CallbackSettings(ConsumerSettings):
    """The shared consumer settings (intake: ``order-events`` -> ``callback_deliveries``),
    plus the sender's."""

    model_config = SettingsConfigDict(env_prefix="KEEPER_CALLBACKS_")

    topic_prefix: str = topic_prefix_field("KEEPER_CALLBACKS_TOPIC_PREFIX")
    group_id: str = "keeper-callbacks"
    # --- sender ---
    #: Deliveries claimed per round, sent concurrently.
    send_batch: int = Field(20, gt=0, le=1000)
    #: How often the sender looks for due deliveries when the last round found none.
    poll_interval_s: float = Field(1.0, gt=0)
    #: Whole-request timeout of one POST.
    http_timeout_s: float = Field(5.0, gt=0)
    #: A claimed delivery is left alone by other senders this long (then it counts as lost
    #: with its sender and is claimed again): must exceed ``http_timeout_s``.
    lease_s: float = Field(30.0, gt=0)
    #: Retry policy: back-off base and cap, jitter share, and the window before parking.
    retry_base_s: float = Field(10.0, gt=0)
    retry_cap_s: float = Field(3600.0, gt=0)
    retry_jitter: float = Field(0.25, ge=0, lt=1)
    retry_window_s: float = Field(24 * 3600.0, gt=0)
    #: Wait while the durable record has not caught up with the event (the projector lags).
    not_projected_delay_s: float = Field(1.0, gt=0)
    db_retry_s: float = Field(1.0, gt=0)

    @model_validator(mode="after")
    def _coherent(self) -> CallbackSettings:
        if self.lease_s <= self.http_timeout_s:
            raise ValueError("lease_s must exceed http_timeout_s")
        self.retry_policy()  # raises for an impossible policy
        return self

    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(
            base_s=self.retry_base_s,
            cap_s=self.retry_cap_s,
            window_s=self.retry_window_s,
            jitter=self.retry_jitter,
        )
