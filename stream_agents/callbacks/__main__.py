from stream_agents.callbacks.process import main

if __name__ == "__main__":
    main()
