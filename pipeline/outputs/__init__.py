"""What training reads: the Pile-style mix, text shards, token shards, the Megatron export, the reader."""
