"""The scheduled sweeper: continues runs whose driver died (see pflambda.engine.sweeper)."""

from pflambda.aws.sweeper import Sweeper

handler = Sweeper()
