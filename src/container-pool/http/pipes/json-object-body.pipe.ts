import { ArgumentMetadata, Injectable, PipeTransform } from '@nestjs/common';
import { invalidRequest } from '../http-errors';

/** A request body must be one JSON object (not an array, a string or nothing). Runs before validation. */
@Injectable()
export class JsonObjectBodyPipe implements PipeTransform {
  transform(value: unknown, metadata: ArgumentMetadata): unknown {
    if (metadata.type !== 'body') return value;
    if (
      value === undefined ||
      value === null ||
      typeof value !== 'object' ||
      Array.isArray(value)
    ) {
      throw invalidRequest([
        {
          field: 'body',
          message:
            value === undefined
              ? 'Request body is required: a JSON object (Content-Type: application/json).'
              : 'Request body must be a JSON object.',
        },
      ]);
    }
    return value;
  }
}
