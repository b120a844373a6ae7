import pino from 'pino';

/**
 * JSON logs (pino). Redaction is a second line of defence: card and ID numbers never reach a log
 * call in the first place (they are hashed on receipt), but a body logged by mistake is masked.
 */
export function createLogger(level: string, destination?: pino.DestinationStream): pino.Logger {
  return pino(
    {
      level,
      base: { service: 'sitegate' },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: {
        paths: ['wageCard', 'card', '*.wageCard', '*.card', 'password', '*.password', 'secret', '*.secret', 'token', '*.token',
          'req.headers.authorization', 'headers.authorization', 'photo', '*.photo'],
        censor: '[redacted]',
      },
    },
    destination,
  );
}
