"""One module per `augment` subcommand."""
